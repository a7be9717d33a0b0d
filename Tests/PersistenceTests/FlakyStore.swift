import Foundation
import Hub
import Persistence
import Synchronization

/// Wraps a real store, fails its first `failures` writes and counts the writes that reach it,
/// to test how the snapshot service handles a store that is down and comes back.
final class FlakyStore: SnapshotStore {
    /// Thrown by the writes that are made to fail.
    struct Outage: Error {}

    private let base: any SnapshotStore
    private let remainingFailures: Mutex<Int>
    private let writes = Mutex(0)
    private let duringFailingWrite: @Sendable () -> Void

    /// - Parameter duringFailingWrite: runs inside each failing write, between the service's
    ///   drain and its restore.
    init(_ base: any SnapshotStore, failures: Int = 0, duringFailingWrite: @escaping @Sendable () -> Void = {}) {
        self.base = base
        self.remainingFailures = Mutex(failures)
        self.duringFailingWrite = duringFailingWrite
    }

    /// Writes that reached the real store.
    var writeCount: Int { writes.withLock { $0 } }

    func migrate() async throws { try await base.migrate() }

    func write(_ changes: ChangeSet) async throws {
        let fails = remainingFailures.withLock { remaining in
            defer { remaining = max(0, remaining - 1) }
            return remaining > 0
        }
        if fails {
            duringFailingWrite()
            throw Outage()
        }
        try await base.write(changes)
        writes.withLock { $0 += 1 }
    }

    func loadUsers() async throws -> [User] { try await base.loadUsers() }
    func loadUnfinishedTrips() async throws -> [Trip] { try await base.loadUnfinishedTrips() }
    func finishedTrips(involving userID: Int) async throws -> [Trip] { try await base.finishedTrips(involving: userID) }
    func trip(id: UUID) async throws -> Trip? { try await base.trip(id: id) }
    func track(of tripID: UUID) async throws -> [TrackPoint] { try await base.track(of: tripID) }
    func loadUnfinishedTracks() async throws -> [UUID: [TrackPoint]] { try await base.loadUnfinishedTracks() }
}
