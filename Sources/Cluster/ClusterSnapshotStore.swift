import Foundation
import Hub
import Logging
import Persistence
import PostgresClient
import Synchronization

/// The snapshot store of one node of a cluster: the shared PostgreSQL as `PostgresSnapshotStore`
/// keeps it, except that every trip row belongs to a node (`trips.owner_node`).
///
/// - Every trip row written carries `owner_node = nodeID`, and the write is fenced: a stored row
///   that another node owns (it took the trip over) is left as it is, and so is a newer state of
///   the trip (`seq`: a snapshot drained before a fenced commit may land after it). Rows left
///   alone are counted in `fencedTripRows` and logged (a warning the first time, debug after).
/// - `loadUnfinishedTrips()` and `loadUnfinishedTracks()` first claim, for this node, the
///   unfinished trips that have no owner (one transaction; two nodes loading together never both
///   claim a trip), then return only the unfinished trips this node owns, and their tracks.
///
/// Users, driver positions and track points are written, and everything else read, as by a
/// single hub's store.
public final class ClusterSnapshotStore: SnapshotStore {
    /// The node this store writes for (`trips.owner_node`).
    public let nodeID: String
    private let shared: PostgresSnapshotStore
    private let tripUpsert: PostgresUpsert<Trip>
    private let logger: Logger
    /// Trip rows a write left alone because another node owns them, since the store was made.
    private let fenced = Atomic<Int>(0)

    /// `trips` in cluster mode: each row also carries `owner_node`; a stored row that another
    /// node owns is never overwritten, nor a newer state of the trip (a snapshot drained before a
    /// fenced commit may land after it).
    static func ownedTrips(by node: String) -> PostgresUpsert<Trip> {
        let trips = PostgresSnapshotStore.trips
        return PostgresUpsert<Trip>(
            table: trips.table, columns: trips.columns + [("owner_node", "text")],
            fence: "(t.owner_node IS NULL OR t.owner_node = EXCLUDED.owner_node) AND t.seq <= EXCLUDED.seq"
        ) { trip in
            trips.fields(trip) + [node]
        }
    }

    /// The points of unfinished trips (statuses not in `$1`) that node `$2` owns, grouped by trip,
    /// ascending `seq`.
    static let ownedUnfinishedTracksSQL = """
        SELECT \(PostgresSnapshotStore.joinedTrackPointColumns)
        FROM trip_track_points p JOIN trips t ON t.id = p.trip_id
        WHERE NOT (t.status = ANY ($1::text[])) AND t.owner_node = $2 ORDER BY p.trip_id, p.seq
        """

    /// Key of the advisory lock that claiming trips at load holds: nodes starting together claim
    /// one after the other, so their row locks can never deadlock (any constant unique to this use).
    static let claimLockKey: Int64 = 0x7461_7869_6875_6232  // "taxihub2"

    /// Claims the unfinished trips nobody owns for node `$2` (finished statuses in `$1`).
    static let claimUnownedSQL = """
        UPDATE trips SET owner_node = $2
        WHERE owner_node IS NULL AND NOT (status = ANY ($1::text[]))
        """

    /// A store for node `nodeID` on the database at `url` (the forms `PostgresConnection.init(url:)`
    /// takes). Like `PostgresSnapshotStore`, it connects on first use.
    ///
    /// - Parameters:
    ///   - copyThreshold: rows of one table from which a write uses COPY (tests lower it).
    ///   - logger: where fenced writes are reported.
    public init(
        url: String, nodeID: String, copyThreshold: Int = PostgresSnapshotStore.defaultCopyThreshold,
        logger: Logger = Logger(label: "taxi-hub.postgres")
    ) {
        self.nodeID = nodeID
        shared = PostgresSnapshotStore(url: url, copyThreshold: copyThreshold)
        tripUpsert = Self.ownedTrips(by: nodeID)
        self.logger = logger
    }

    /// How many trip rows writes have left alone so far because another node owns them (each
    /// write counts its own; a trip fenced off in two writes counts twice).
    public var fencedTripRows: Int { fenced.load(ordering: .relaxed) }

    public func migrate() async throws {
        try await shared.migrate()
    }

    /// Closes the store's connections; a later call opens them again.
    public func close() async {
        await shared.close()
    }

    public func write(_ changes: ChangeSet) async throws {
        let node = nodeID
        let fencedOff = try await shared.write(changes, trips: tripUpsert) { (connection, trips, written) -> [UUID] in
            // Rows neither inserted nor updated were unchanged or fenced off; only then is it
            // worth asking which (after the upsert, an unfenced row is ours).
            guard written < trips.count else { return [] }
            return try connection.query(
                "SELECT id FROM trips WHERE id = ANY ($1::uuid[]) AND owner_node IS DISTINCT FROM $2",
                [PostgresArray(trips.map(\.id)), node]
            ).map { try $0.decode(UUID.self, at: 0) }
        }
        guard let fencedOff, !fencedOff.isEmpty else { return }
        let before = fenced.add(fencedOff.count, ordering: .relaxed).oldValue
        let level: Logger.Level = before == 0 ? .warning : .debug
        logger.log(
            level: level, "Trips owned by another node were left alone (another node took them over)",
            metadata: [
                "node": "\(nodeID)", "trips": "\(fencedOff.count)",
                "example": "\(fencedOff[0].lowercasedText)", "fenced_total": "\(before + fencedOff.count)",
            ]
        )
    }

    public func loadUsers() async throws -> [User] {
        try await shared.loadUsers()
    }

    public func loadUnfinishedTrips() async throws -> [Trip] {
        let rows = try await readClaiming(
            """
            SELECT \(PostgresSnapshotStore.tripColumns) FROM trips
            WHERE NOT (status = ANY ($1::text[])) AND owner_node = $2 ORDER BY created, id
            """
        )
        return try rows.map(PostgresSnapshotStore.decodeTrip)
    }

    public func loadUnfinishedTracks() async throws -> [UUID: [TrackPoint]] {
        try PostgresSnapshotStore.groupedTracks(try await readClaiming(Self.ownedUnfinishedTracksSQL))
    }

    /// Whatever node owns them (it reads `trips` as committed, without claiming anything).
    public func unfinishedTrips(involving userID: Int, includingRequested: Bool) async throws -> [Trip] {
        try await shared.unfinishedTrips(involving: userID, includingRequested: includingRequested)
    }

    public func finishedTrips(involving userID: Int) async throws -> [Trip] {
        try await shared.finishedTrips(involving: userID)
    }

    public func trip(id: UUID) async throws -> Trip? {
        try await shared.trip(id: id)
    }

    public func track(of tripID: UUID) async throws -> [TrackPoint] {
        try await shared.track(of: tripID)
    }

    /// Claims the unowned unfinished trips for this node, then runs `sql` (finished statuses in
    /// `$1`, this node in `$2`), in one transaction. A second node claiming at the same time waits
    /// for the first one's transaction (an advisory lock), then finds those rows owned and skips
    /// them. Claiming again is harmless, so a retry after a lost connection is too.
    private func readClaiming(_ sql: String) async throws -> PostgresRows {
        let parameters: [any PostgresTextEncodable] = [PostgresSnapshotStore.finished, nodeID]
        return try await shared.reading { connection in
            try connection.transaction { connection in
                try connection.query("SELECT pg_advisory_xact_lock($1)", [Self.claimLockKey])
                try connection.query(Self.claimUnownedSQL, parameters)
                return try connection.query(sql, parameters)
            }
        }
    }
}
