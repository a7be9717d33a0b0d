import Foundation
import Hub

/// Brings the store up to date with the journal at start, before the hub loads its state: the
/// changes a crashed hub acknowledged after its last snapshot are in the journal only.
public enum JournalRecovery {
    /// What a recovery did.
    public struct Outcome: Sendable, Equatable {
        /// Trips and users written to the store from the journal.
        public var trips = 0
        public var users = 0
        /// Journal records older than what the store held (a snapshot wrote them already).
        public var skipped = 0

        public init() {}
    }

    /// Writes the journal's changes that the store lacks (`merge`), then deletes the segments
    /// read. Run before anything is appended to the journal.
    public static func recover(journal: TripJournal, into store: any SnapshotStore) async throws -> Outcome {
        let (records, through) = try await journal.replay()
        guard through > 0 else { return Outcome() }
        let outcome = try await merge(records, into: store)
        try await journal.dropSegments(through: through)
        return outcome
    }

    /// Writes the changes of `records` (oldest first) that the store lacks, in one snapshot write.
    /// Per trip the newest record counts, and only when its `seq` is not below the stored trip's
    /// (a trip row's `seq` is that of its latest state, which only grows); a user only when the
    /// store lacks it.
    public static func merge(_ records: [DurableChange], into store: any SnapshotStore) async throws -> Outcome {
        var outcome = Outcome()
        var trips: [UUID: Trip] = [:]
        var users: [Int: User] = [:]
        for record in records {
            switch record {
            case .trip(let trip): trips[trip.id] = trip
            case .user(let user): users[user.id] = user
            }
        }
        var changes = ChangeSet()
        let storedUsers = Set(try await store.loadUsers().map(\.id))
        for (id, user) in users where !storedUsers.contains(id) {
            changes.users[id] = user
        }
        for (id, trip) in trips {
            if let stored = try await store.trip(id: id), stored.seq > trip.seq {
                outcome.skipped += 1
                continue
            }
            changes.trips[id] = trip
        }
        outcome.skipped += users.count - changes.users.count
        outcome.trips = changes.trips.count
        outcome.users = changes.users.count
        try await store.write(changes)
        return outcome
    }
}
