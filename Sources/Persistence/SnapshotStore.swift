import Foundation
import Hub

/// Durable home of the hub's state, so that a restart loses nothing the hub acknowledged.
///
/// The hub keeps live state in memory; a store only takes batched snapshots of what changed
/// and gives the state back at start (`restore(into:)`). Implementations: SQLite (the embedded
/// default) and PostgreSQL. Every implementation passes the same store test suite.
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

/// What a hub is rebuilt from: every account, and the unfinished trips with their tracks.
public struct StoredState: Sendable {
    public let users: [User]
    public let trips: [Trip]
    public let tracks: [UUID: [TrackPoint]]
}

extension SnapshotStore {
    /// Rebuilds `hub` from the store, the one way a hub starts from what it stored (the server's
    /// start-up and the simulator's restarts): loads the accounts, the unfinished trips and their
    /// tracks, and hands them to `hub.restore`. Returns what it loaded.
    @discardableResult
    public func restore(into hub: Hub) async throws -> StoredState {
        let state = StoredState(users: try await loadUsers(), trips: try await loadUnfinishedTrips(), tracks: try await loadUnfinishedTracks())
        hub.restore(users: state.users, trips: state.trips, tracks: state.tracks)
        return state
    }

    /// Filters every unfinished trip; a store with many trips answers with a query of its own.
    public func unfinishedTrips(involving userID: Int, includingRequested: Bool) async throws -> [Trip] {
        try await loadUnfinishedTrips().filter { trip in
            trip.riderID == userID || trip.driverID == userID || (includingRequested && trip.status == .requested)
        }
    }
}
