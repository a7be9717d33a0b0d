import Foundation
import Hub
import Persistence
import PostgresClient

/// The cluster's shared records in PostgreSQL: node leases, trip ownership, and sign-ups that must
/// be unique across nodes.
///
/// Several hub nodes share one database; each live trip is owned by one node (`trips.owner_node`).
/// A node holds a lease (`cluster_nodes`) that it renews; one whose lease ran out is taken over by
/// another node, which becomes the owner of its unfinished trips. Every lease time is the
/// database's clock (`now()`), never a node's, so the nodes' clocks may disagree.
///
/// The tables come from `PostgresMigrations` version 4: run the snapshot store's `migrate()`
/// before the first call here. Like the snapshot store, this store connects on first use,
/// reconnects after the server went away, and runs every libpq call on threads of its own (three
/// connections, see `PostgresConnection`), never on Swift's cooperative pool or the event loops:
/// callers simply await. The lease calls have a connection of their own, so a renewal never waits
/// behind a large takeover or a user lookup; so do fenced commits.
public final class PostgresClusterStore: Sendable {
    /// This node's id (`cluster_nodes.node_id`, `trips.owner_node`).
    public let nodeID: String
    /// This run of the node: `register(lease:)` records it; `renew(lease:)` only extends a lease
    /// of the same incarnation.
    public let incarnation: UInt64

    /// Leases: register, renew, expired and live nodes.
    private let leases: PostgresConnection
    /// Everything else: takeovers, users, owners.
    private let records: PostgresConnection
    /// Fenced commits of trip changes (`commit`), never behind a takeover or a renewal.
    private let commits: PostgresConnection

    public struct InvalidNodeID: Error, CustomStringConvertible {
        public let nodeID: String
        public var description: String { "a cluster node id must be non-empty text without NUL: \"\(nodeID)\"" }
    }

    /// A store for node `nodeID` on the database at `url` (the forms `PostgresConnection.init(url:)`
    /// takes). It does not connect yet; throws `InvalidNodeID` for an empty id or one holding NUL.
    public init(url: String, nodeID: String, incarnation: UInt64) throws {
        guard !nodeID.isEmpty, !nodeID.utf8.contains(0) else { throw InvalidNodeID(nodeID: nodeID) }
        self.nodeID = nodeID
        self.incarnation = incarnation
        leases = PostgresConnection(url: url, threadName: "pg-leases")
        records = PostgresConnection(url: url, threadName: "pg-cluster")
        commits = PostgresConnection(url: url, threadName: "pg-commits")
    }

    /// Closes the connections; a later call opens them again.
    public func close() async {
        await leases.close()
        await records.close()
        await commits.close()
    }

    // MARK: - Fenced commits

    /// The lease was gone when a commit checked it: this node no longer owns its trips.
    public struct LeaseLost: Error, CustomStringConvertible {
        public let nodeID: String
        public var description: String { "node \(nodeID) no longer holds its lease (expired, or taken over)" }

        public init(nodeID: String) {
            self.nodeID = nodeID
        }
    }

    /// Commits trip changes in one transaction, fenced by this node's lease: the transaction
    /// first locks this node's lease row (`FOR SHARE`) and goes on only if it is this
    /// incarnation's and not expired by the database's clock; a takeover (which deletes the row)
    /// then waits for the commit, or the commit finds the row gone. Each trip row is written with
    /// `owner_node` = this node, only over a row this node owns (or a new one) and never over a
    /// newer state (`seq`). Throws `LeaseLost` when the lease is gone or any of the trips belongs
    /// to another node: nothing is written then. Users in the batch are inserted if missing.
    ///
    /// Not retried: a commit whose connection broke may or may not have happened.
    public func commit(_ batch: [DurableChange]) async throws {
        var trips: [UUID: Trip] = [:]
        var users: [User] = []
        for change in batch {
            switch change {
            case .trip(let trip): trips[trip.id] = trip
            case .user(let user): users.append(user)
            }
        }
        let rows = Array(trips.values)
        let newUsers = users
        let upsert = ClusterSnapshotStore.ownedTrips(by: nodeID)
        let parameters: [any PostgresTextEncodable] = [nodeID, storedIncarnation]
        let me = nodeID
        // A connection that went stale while idle fails at once and is replaced: the transaction
        // has not begun then, so this retry repeats nothing.
        try await commits.retryingOnConnectionLoss { connection in
            _ = try connection.query("SELECT 1")
        }
        try await commits.transaction { connection in
            let lease = try connection.query(
                """
                SELECT 1 FROM cluster_nodes
                WHERE node_id = $1 AND incarnation = $2 AND lease_until > now() FOR SHARE
                """,
                parameters
            )
            guard lease.count == 1 else { throw LeaseLost(nodeID: me) }
            try PostgresSnapshotStore.keptUsers.write(newUsers, copyThreshold: .max, on: connection)
            try upsert.write(rows, copyThreshold: .max, on: connection)
            let foreign = try connection.query(
                "SELECT count(*) FROM trips WHERE id = ANY ($1::uuid[]) AND owner_node IS DISTINCT FROM $2",
                [PostgresArray(rows.map(\.id)), me]
            )
            guard try foreign.first?.decode(Int.self, at: 0) == 0 else { throw LeaseLost(nodeID: me) }
        }
    }

    /// `incarnation` as stored (BIGINT): the same 64 bits, so any value round-trips.
    private var storedIncarnation: Int64 { Int64(bitPattern: incarnation) }

    /// A lease length in whole microseconds, for `$n::bigint * interval '1 microsecond'`.
    private static func microseconds(_ lease: Duration) -> Int64 {
        let (seconds, attoseconds) = lease.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }

    // MARK: - Leases

    /// Inserts or replaces this node's lease row (with this incarnation), `lease_until = now() + lease`.
    /// Replacing a row of an earlier incarnation makes that incarnation's `renew` return false.
    public func register(lease: Duration) async throws {
        let parameters: [any PostgresTextEncodable] = [nodeID, storedIncarnation, Self.microseconds(lease)]
        _ = try await leases.retryingOnConnectionLoss { connection in
            try connection.query(
                """
                INSERT INTO cluster_nodes (node_id, incarnation, lease_until)
                VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
                ON CONFLICT (node_id) DO UPDATE
                SET incarnation = EXCLUDED.incarnation, lease_until = EXCLUDED.lease_until, started = now()
                """,
                parameters
            )
        }
    }

    /// Extends this node's lease to `now() + lease`; returns false when its row is gone or belongs
    /// to another incarnation (another node took it over, or the node id runs again elsewhere):
    /// this node must then stop owning trips. A lease that ran out is not extended either (false),
    /// even before another node took it over: the node's own deadline passed before it
    /// (`ClusterNode.extendLocalLease`), so it stopped acting as owner and must rejoin anew.
    public func renew(lease: Duration) async throws -> Bool {
        let parameters: [any PostgresTextEncodable] = [nodeID, storedIncarnation, Self.microseconds(lease)]
        let result = try await leases.retryingOnConnectionLoss { connection in
            try connection.query(
                """
                UPDATE cluster_nodes SET lease_until = now() + $3::bigint * interval '1 microsecond'
                WHERE node_id = $1 AND incarnation = $2 AND lease_until >= now()
                """,
                parameters
            )
        }
        return result.affectedRows == 1
    }

    /// Nodes whose lease ran out (`lease_until < now()`), other than this one, by id.
    public func expiredNodes() async throws -> [String] {
        try await nodeIDs(
            "SELECT node_id FROM cluster_nodes WHERE lease_until < now() AND node_id <> $1 ORDER BY node_id", [nodeID]
        )
    }

    /// The nodes with a live lease (`lease_until >= now()`), this one included when it has one, by id.
    public func liveNodes() async throws -> [String] {
        try await nodeIDs("SELECT node_id FROM cluster_nodes WHERE lease_until >= now() ORDER BY node_id", [])
    }

    private func nodeIDs(_ sql: String, _ parameters: [any PostgresTextEncodable]) async throws -> [String] {
        let rows = try await leases.retryingOnConnectionLoss { connection in
            try connection.query(sql, parameters)
        }
        return try rows.map { try $0.decode(String.self, at: 0) }
    }

    // MARK: - Takeover

    /// Takes over an expired node, atomically: in one transaction, deletes its lease row only if
    /// it is still expired (of several nodes trying at once exactly one wins; a node that renewed
    /// in time keeps its row), makes this node the owner of its unfinished trips, and returns
    /// those trips (by `created`, then id, as `loadUnfinishedTrips` orders them) with their
    /// tracks (ascending `seq`; trips without points have no entry), and the incarnation taken
    /// over (its answers are stale from now on). Nil when the row was not, or no longer, expired:
    /// another node won, or it renewed, or it never registered.
    ///
    /// Not retried: if the connection is lost while the transaction commits, it is unknown whether
    /// the takeover happened, and the call throws. The trips are then either still the expired
    /// node's (call again) or already this node's (`ownedTrips()` returns them). A connection that
    /// went stale while idle is replaced before the transaction starts.
    public func takeOver(node: String) async throws -> (trips: [Trip], tracks: [UUID: [TrackPoint]], incarnation: UInt64)? {
        guard node != nodeID else {
            throw PostgresError(kind: .client, message: "node \(nodeID) cannot take itself over")
        }
        let me = nodeID
        // A stale connection (server restarted while idle) fails here and is replaced, so the
        // transaction below does not fail for that reason.
        try await records.retryingOnConnectionLoss { connection in
            _ = try connection.query("SELECT 1")
        }
        let rows = try await records.transaction { connection -> (PostgresRows, PostgresRows, Int64)? in
            let deleted = try connection.query(
                "DELETE FROM cluster_nodes WHERE node_id = $1 AND lease_until < now() RETURNING incarnation", [node]
            )
            guard deleted.affectedRows == 1, let row = deleted.first else { return nil }
            let incarnation = try row.decode(Int64.self, at: 0)
            let (trips, tracks) = try Self.moveUnfinishedTrips(from: node, to: me, on: connection)
            return (trips, tracks, incarnation)
        }
        guard let rows else { return nil }
        let (trips, tracks) = try Self.decode(trips: rows.0, tracks: rows.1)
        return (trips, tracks, UInt64(bitPattern: rows.2))
    }

    /// The unfinished trips this node owns, with their tracks (shapes and order as in
    /// `takeOver(node:)`): to rebuild after a takeover whose outcome was unknown.
    public func ownedTrips() async throws -> (trips: [Trip], tracks: [UUID: [TrackPoint]]) {
        let parameters: [any PostgresTextEncodable] = [PostgresSnapshotStore.finished, nodeID]
        let (tripRows, trackRows) = try await records.retryingOnConnectionLoss { connection in
            try connection.transaction { connection in
                let trips = try connection.query(
                    """
                    SELECT \(PostgresSnapshotStore.tripColumns) FROM trips
                    WHERE NOT (status = ANY ($1::text[])) AND owner_node = $2 ORDER BY created, id
                    """,
                    parameters
                )
                let tracks = try connection.query(ClusterSnapshotStore.ownedUnfinishedTracksSQL, parameters)
                return (trips, tracks)
            }
        }
        return try Self.decode(trips: tripRows, tracks: trackRows)
    }

    /// Makes `me` the owner of `node`'s unfinished trips; returns their rows (`tripColumns`) and
    /// their track points (`trackPointColumns`, by trip and `seq`).
    private static func moveUnfinishedTrips(
        from node: String, to me: String, on connection: isolated PostgresConnection
    ) throws -> (PostgresRows, PostgresRows) {
        let trips = try connection.query(
            """
            WITH moved AS (
                UPDATE trips SET owner_node = $2
                WHERE owner_node = $1 AND NOT (status = ANY ($3::text[]))
                RETURNING \(PostgresSnapshotStore.tripColumns)
            )
            SELECT \(PostgresSnapshotStore.tripColumns) FROM moved ORDER BY created, id
            """,
            [node, me, PostgresSnapshotStore.finished]
        )
        let ids = try trips.map { try $0.decode(UUID.self, at: 0) }
        guard !ids.isEmpty else { return (trips, trips) }
        let tracks = try connection.query(
            """
            SELECT \(PostgresSnapshotStore.trackPointColumns) FROM trip_track_points
            WHERE trip_id = ANY ($1::uuid[]) ORDER BY trip_id, seq
            """,
            [PostgresArray(ids)]
        )
        return (trips, tracks)
    }

    private static func decode(
        trips tripRows: PostgresRows, tracks trackRows: PostgresRows
    ) throws -> (trips: [Trip], tracks: [UUID: [TrackPoint]]) {
        let trips = try tripRows.map(PostgresSnapshotStore.decodeTrip)
        let tracks = trips.isEmpty ? [:] : try PostgresSnapshotStore.groupedTracks(trackRows)
        return (trips, tracks)
    }

    // MARK: - Users and owners

    /// Inserts a new user row at once, so that sign-ups are unique across nodes: the username's
    /// UNIQUE constraint decides. False when the username is taken. The caller chooses the id,
    /// which must not be taken by another username (that throws the unique violation); the row
    /// the snapshot store later writes for this user (same id) just updates it.
    ///
    /// Repeating a call (a retry after a lost connection) returns true again: a username stored
    /// with this very id counts as this insert.
    public func insertUser(_ user: User) async throws -> Bool {
        let users = PostgresSnapshotStore.users
        let fields: [(any PostgresTextEncodable)?] = users.fields(user).map { $0 }
        let placeholders = users.columns.enumerated().map { "$\($0.offset + 1)::\($0.element.type)" }
        let result = try await records.retryingOnConnectionLoss { connection in
            let inserted = try connection.query(
                """
                INSERT INTO users (\(users.columnList)) VALUES (\(placeholders.joined(separator: ", ")))
                ON CONFLICT (username) DO NOTHING
                """,
                fields
            )
            if inserted.affectedRows == 1 { return true }
            let holder = try connection.query("SELECT id FROM users WHERE username = $1", [user.username])
            return try holder.first?.decode(Int.self, at: 0) == user.id
        }
        return result
    }

    /// A user by username, for a log-in on a node that has not heard of a sign-up on another node
    /// yet. Nil when there is none.
    public func user(username: String) async throws -> User? {
        let rows = try await records.retryingOnConnectionLoss { connection in
            try connection.query(
                "SELECT \(PostgresSnapshotStore.userColumns) FROM users WHERE username = $1", [username]
            )
        }
        return try rows.first.map(PostgresSnapshotStore.decodeUser)
    }

    /// Who owns a trip now; nil when there is no such row or it has no owner.
    public func owner(of trip: UUID) async throws -> String? {
        let rows = try await records.retryingOnConnectionLoss { connection in
            try connection.query("SELECT owner_node FROM trips WHERE id = $1::uuid", [trip])
        }
        return try rows.first?.decodeIfPresent(String.self, at: 0)
    }
}
