import Foundation
import Hub

/// Durable home of the hub's state, so that a restart loses nothing the hub acknowledged.
///
/// The hub keeps live state in memory; a store only takes batched snapshots of what changed
/// and gives the state back at start. Implementations: SQLite (embedded default), PostgreSQL.
/// Every implementation passes the same store test suite.
public protocol SnapshotStore: Sendable {
    /// Creates or upgrades the schema (versioned migrations applied in order). Idempotent.
    func migrate() async throws

    /// Writes every entity of `changes` in ONE transaction, upserting by primary key, with batched
    /// multi-row statements (not one statement per row). An empty set does nothing (no transaction).
    func write(_ changes: ChangeSet) async throws

    /// Every user, ordered by id.
    func loadUsers() async throws -> [User]

    /// Every trip that is not finished (see `TripStatus.isFinished`), to rebuild the live trips at start.
    func loadUnfinishedTrips() async throws -> [Trip]

    /// Finished trips where the user is rider or driver, newest `created` first.
    func finishedTrips(involving userID: Int) async throws -> [Trip]

    /// Unfinished trips where the user is rider or driver, and with `includingRequested` every
    /// `REQUESTED` one too, as the store holds them (a trip's committed state), whoever wrote them.
    func unfinishedTrips(involving userID: Int, includingRequested: Bool) async throws -> [Trip]

    /// The stored trip with this id, finished or not.
    func trip(id: UUID) async throws -> Trip?

    /// The recorded track of one trip, ascending `seq`.
    func track(of tripID: UUID) async throws -> [TrackPoint]

    /// The tracks of every trip that is not finished, to rebuild the live trips at start.
    func loadUnfinishedTracks() async throws -> [UUID: [TrackPoint]]
}

extension SnapshotStore {
    /// Filters every unfinished trip; a store with many trips answers with a query of its own.
    public func unfinishedTrips(involving userID: Int, includingRequested: Bool) async throws -> [Trip] {
        try await loadUnfinishedTrips().filter { trip in
            trip.riderID == userID || trip.driverID == userID || (includingRequested && trip.status == .requested)
        }
    }
}
