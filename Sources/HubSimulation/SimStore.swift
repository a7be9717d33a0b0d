import Foundation
import Hub
import Persistence
import Synchronization

/// The real store behind a wrapper that fails or stalls writes on the seed's schedule.
///
/// Faults per write, drawn from the run's random source in write order: stall (the write waits
/// some simulated steps first, while the hub goes on), fail before writing (the store is down),
/// or fail after writing (the transaction committed but the reply was lost, so the service
/// writes the same changes again later). Every call to the real store goes through
/// `BlockingBridge`, so it completes within the step that made it.
final class SimStore: SnapshotStore {
    struct Outage: Error, CustomStringConvertible {
        let committed: Bool
        var description: String { committed ? "simulated outage after commit" : "simulated outage" }
    }

    /// What the harness learns from each write, in order.
    struct WriteRecord: Sendable {
        let drainStep: Int
        let changes: ChangeSet
        let committed: Bool
        let succeeded: Bool
    }

    struct Faults: Sendable {
        var failBefore = 0.0
        var failAfter = 0.0
        var stall = 0.0
        var maxStallSteps = 40
    }

    private let base: any SnapshotStore
    private let scheduler: SimScheduler
    private let faults: Faults
    private let random: Mutex<SimRandom>
    /// The harness's current step (the store reads it when a write starts, i.e. at the drain).
    private let currentStep: @Sendable () -> Int
    private let records = Mutex<[WriteRecord]>([])
    private let enabled = Mutex(true)
    private let killed = Mutex(false)

    /// Whether writes fail and stall at all (off while a run drains and checks its end).
    var faultsEnabled: Bool {
        get { enabled.withLock { $0 } }
        set { enabled.withLock { $0 = newValue } }
    }

    init(
        base: any SnapshotStore, scheduler: SimScheduler, faults: Faults, seed: UInt64,
        currentStep: @escaping @Sendable () -> Int
    ) {
        self.base = base
        self.scheduler = scheduler
        self.faults = faults
        self.random = Mutex(SimRandom(seed: seed))
        self.currentStep = currentStep
    }

    /// The hub using this wrapper crashed: from now on every call fails without reaching the store.
    func kill() {
        killed.withLock { $0 = true }
    }

    private func checkAlive() throws {
        if killed.withLock({ $0 }) { throw Outage(committed: false) }
    }

    /// Takes the writes finished since the last call.
    func takeRecords() -> [WriteRecord] {
        records.withLock { records in
            defer { records = [] }
            return records
        }
    }

    func migrate() async throws {
        try checkAlive()
        let base = self.base
        try BlockingBridge.run { try await base.migrate() }
    }

    func write(_ changes: ChangeSet) async throws {
        try checkAlive()
        let drainStep = currentStep()
        let enabled = faultsEnabled
        let (stall, failBefore, failAfter, stallSteps) = random.withLock { random in
            (enabled && random.chance(faults.stall), enabled && random.chance(faults.failBefore),
             enabled && random.chance(faults.failAfter), 1 + random.index(max(1, faults.maxStallSteps)))
        }
        if stall {
            await scheduler.sleep(until: currentStep() + stallSteps)
            try checkAlive()
        }
        if failBefore {
            records.withLock { $0.append(WriteRecord(drainStep: drainStep, changes: changes, committed: false, succeeded: false)) }
            throw Outage(committed: false)
        }
        let base = self.base
        try BlockingBridge.run { try await base.write(changes) }
        records.withLock {
            $0.append(WriteRecord(drainStep: drainStep, changes: changes, committed: true, succeeded: !failAfter))
        }
        if failAfter { throw Outage(committed: true) }
    }

    func loadUsers() async throws -> [User] {
        try checkAlive()
        let base = self.base
        return try BlockingBridge.run { try await base.loadUsers() }
    }

    func loadUnfinishedTrips() async throws -> [Trip] {
        try checkAlive()
        let base = self.base
        return try BlockingBridge.run { try await base.loadUnfinishedTrips() }
    }

    func finishedTrips(involving userID: Int) async throws -> [Trip] {
        try checkAlive()
        let base = self.base
        return try BlockingBridge.run { try await base.finishedTrips(involving: userID) }
    }

    func trip(id: UUID) async throws -> Trip? {
        try checkAlive()
        let base = self.base
        return try BlockingBridge.run { try await base.trip(id: id) }
    }

    func track(of tripID: UUID) async throws -> [TrackPoint] {
        try checkAlive()
        let base = self.base
        return try BlockingBridge.run { try await base.track(of: tripID) }
    }

    func loadUnfinishedTracks() async throws -> [UUID: [TrackPoint]] {
        try checkAlive()
        let base = self.base
        return try BlockingBridge.run { try await base.loadUnfinishedTracks() }
    }
}
