import Foundation
import Hub
import Logging
import Synchronization

/// The PostgreSQL store, used when the hub is given a database URL.
///
/// It holds two connections, each on a thread of its own (see `PostgresConnection`): one for
/// migrations and snapshot writes, one for reads (start-up loads, REST history), so a large
/// snapshot never holds up a rider's history request. Both connect on first use and reconnect
/// after the server went away; a call that fails because a working connection broke under it is
/// run once more on a new connection (writes upsert latest values, so repeating one is harmless).
///
/// `write(_:)` is one transaction. Small sets are sent as multi-row `INSERT … ON CONFLICT`
/// statements; from `copyThreshold` rows of a table on, the rows are streamed with `COPY` into a
/// temporary staging table that is merged with one `INSERT … SELECT … ON CONFLICT` and dropped at
/// commit. Rows whose values did not change are not rewritten; track points already stored are
/// kept as they are.
///
/// In cluster mode (`ownerNode` set) the store writes for one node of several sharing the
/// database: see `init(url:copyThreshold:ownerNode:logger:)`.
public final class PostgresSnapshotStore: SnapshotStore {
    /// From this many rows of one table, a write goes through COPY and a staging table.
    public static let defaultCopyThreshold = 1_000

    static let users = PostgresUpsert<User>(
        table: "users",
        columns: [
            ("id", "bigint"), ("username", "text"), ("first_name", "text"), ("last_name", "text"), ("grp", "text"),
            ("photo", "text"), ("password_hash", "text"),
        ]
    ) { user in
        [user.id, user.username, user.firstName, user.lastName, user.group.rawValue, user.photo, user.passwordHash]
    }

    private static let trips = PostgresUpsert<Trip>(
        table: "trips",
        columns: [
            ("id", "uuid"), ("created", "bigint"), ("updated", "bigint"), ("pick_up_address", "text"),
            ("drop_off_address", "text"), ("status", "text"), ("rider_id", "bigint"), ("driver_id", "bigint"),
            ("seq", "bigint"), ("pick_up_lat", "float8"), ("pick_up_lng", "float8"), ("drop_off_lat", "float8"),
            ("drop_off_lng", "float8"),
        ]
    ) { trip in
        [
            trip.id, trip.created.microseconds, trip.updated.microseconds, trip.pickUpAddress, trip.dropOffAddress,
            trip.status.rawValue, trip.riderID, trip.driverID, trip.seq, trip.pickUpLocation?.lat,
            trip.pickUpLocation?.lng, trip.dropOffLocation?.lat, trip.dropOffLocation?.lng,
        ]
    }

    private static let driverPositions = PostgresUpsert<DriverPosition>(
        table: "driver_positions", columns: [("driver_id", "bigint")] + fixColumns
    ) { position in
        [position.driverID] + fields(position.fix)
    }

    /// Append-only: a retried snapshot sends points that may already be stored.
    private static let trackPoints = PostgresUpsert<TrackPoint>(
        table: "trip_track_points", columns: [("trip_id", "uuid"), ("seq", "bigint")] + fixColumns, keyCount: 2,
        onConflict: .keep
    ) { point in
        [point.tripID, point.seq] + fields(point.fix)
    }

    /// The columns of a `LocationFix`, in `fields(_:)` order.
    private static let fixColumns: [(name: String, type: String)] = [
        ("lat", "float8"), ("lng", "float8"), ("heading", "float8"), ("speed", "float8"), ("accuracy", "float8"),
        ("recorded", "bigint"),
    ]

    static let userColumns = users.columnList
    static let tripColumns = trips.columnList
    static let trackPointColumns = trackPoints.columnList
    /// The points of unfinished trips (statuses not in `$1`), grouped by trip, ascending `seq`.
    private static let unfinishedTracksSQL = """
        SELECT \(trackPoints.columns.map { "p.\($0.name)" }.joined(separator: ", "))
        FROM trip_track_points p JOIN trips t ON t.id = p.trip_id
        WHERE NOT (t.status = ANY ($1::text[])) ORDER BY p.trip_id, p.seq
        """
    /// The points of unfinished trips (statuses not in `$1`) that node `$2` owns, grouped by trip,
    /// ascending `seq`.
    static let ownedUnfinishedTracksSQL = """
        SELECT \(trackPoints.columns.map { "p.\($0.name)" }.joined(separator: ", "))
        FROM trip_track_points p JOIN trips t ON t.id = p.trip_id
        WHERE NOT (t.status = ANY ($1::text[])) AND t.owner_node = $2 ORDER BY p.trip_id, p.seq
        """
    /// Stored statuses of finished trips, as one `text[]` parameter.
    static let finished = PostgresArray(TripStatus.allCases.filter(\.isFinished).map(\.rawValue))

    /// `users` for rows that may exist already (a cluster node inserts a sign-up at once): stored
    /// rows are kept.
    static let keptUsers: PostgresUpsert<User> = {
        var upsert = users
        upsert.onConflict = .keep
        return upsert
    }()

    /// `trips` in cluster mode: each row also carries `owner_node`; a stored row that another
    /// node owns is never overwritten, nor a newer state of the trip (a snapshot drained before a
    /// fenced commit may land after it).
    static func ownedTrips(by node: String) -> PostgresUpsert<Trip> {
        PostgresUpsert<Trip>(
            table: trips.table, columns: trips.columns + [("owner_node", "text")],
            fence: "(t.owner_node IS NULL OR t.owner_node = EXCLUDED.owner_node) AND t.seq <= EXCLUDED.seq"
        ) { trip in
            trips.fields(trip) + [node]
        }
    }

    /// Key of the advisory lock that claiming trips at load holds: nodes starting together claim
    /// one after the other, so their row locks can never deadlock (any constant unique to this use).
    static let claimLockKey: Int64 = 0x7461_7869_6875_6232  // "taxihub2"

    /// Claims the unfinished trips nobody owns for node `$2` (finished statuses in `$1`).
    static let claimUnownedSQL = """
        UPDATE trips SET owner_node = $2
        WHERE owner_node IS NULL AND NOT (status = ANY ($1::text[]))
        """

    private let writer: PostgresConnection
    private let reader: PostgresConnection
    private let copyThreshold: Int
    /// The node this store writes for in cluster mode; nil for a single-node hub.
    public let ownerNode: String?
    private let tripUpsert: PostgresUpsert<Trip>
    private let logger: Logger
    /// Trip rows a write left alone because another node owns them, since the store was made.
    private let fenced = Atomic<Int>(0)

    /// A store on the database at `url` (see `PostgresConnection.init(url:)` for the forms it
    /// takes). It does not connect yet: the first call does, so a server that is down only fails
    /// calls, which succeed once it is back. Call `migrate()` before anything else.
    ///
    /// - Parameters:
    ///   - copyThreshold: rows of one table from which a write uses COPY (tests lower it).
    ///   - ownerNode: cluster mode: the id of the node this store writes for. Nil (the default,
    ///     a single-node hub) leaves `trips.owner_node` alone everywhere. When set:
    ///     - every trip row written carries `owner_node = ownerNode`, and the write is fenced: a
    ///       stored row owned by another node is left as it is (that node took the trip over), counted in
    ///       `fencedTripRows` and logged (a warning the first time, debug after);
    ///     - `loadUnfinishedTrips()` and `loadUnfinishedTracks()` first claim the unfinished trips
    ///       that have no owner for this node (one transaction; two nodes loading together never
    ///       both claim a trip), then return only the unfinished trips this node owns, and their tracks.
    ///     Users, driver positions and track points are written as in single-node mode.
    ///   - logger: where fenced writes are reported.
    public init(
        url: String, copyThreshold: Int = PostgresSnapshotStore.defaultCopyThreshold, ownerNode: String? = nil,
        logger: Logger = Logger(label: "taxi-hub.postgres")
    ) {
        // Snapshots may wait; requests and sockets may not: the writer's thread runs at nice 10.
        writer = PostgresConnection(url: url, threadName: "pg-writer", niceness: 10)
        reader = PostgresConnection(url: url, threadName: "pg-reader")
        self.copyThreshold = max(1, copyThreshold)
        self.ownerNode = ownerNode
        tripUpsert = ownerNode.map(Self.ownedTrips(by:)) ?? Self.trips
        self.logger = logger
    }

    /// Cluster mode: how many trip rows writes have left alone so far because another node owns
    /// them (each write counts its own; a trip fenced off in two writes counts twice). Always 0
    /// in single-node mode.
    public var fencedTripRows: Int { fenced.load(ordering: .relaxed) }

    public func migrate() async throws {
        _ = try await writer.retryingOnConnectionLoss { connection in
            try PostgresMigrations.apply(on: connection)
        }
    }

    /// The schema versions the database has, ascending (`PostgresMigrations.all` after `migrate()`).
    public func schemaVersions() async throws -> [Int] {
        try await reader.retryingOnConnectionLoss { connection in
            try PostgresMigrations.appliedVersions(on: connection)
        }
    }

    /// Connects if needed and asks the server a trivial question; throws when the database cannot
    /// be reached. For readiness checks.
    public func ping() async throws {
        try await reader.retryingOnConnectionLoss { connection in
            _ = try connection.query("SELECT 1")
        }
    }

    /// Closes both connections; a later call opens them again.
    public func close() async {
        await writer.close()
        await reader.close()
    }

    public func write(_ changes: ChangeSet) async throws {
        guard !changes.isEmpty else { return }
        let threshold = copyThreshold
        let tripUpsert = tripUpsert
        let ownerNode = ownerNode
        // Everything, down to copying the values out of the set, runs on the writer's thread.
        let fencedOff = try await writer.retryingOnConnectionLoss { connection in
            let users = Array(changes.users.values)
            let trips = Array(changes.trips.values)
            let positions = Array(changes.driverPositions.values)
            return try connection.transaction { connection in
                try Self.users.write(users, copyThreshold: threshold, on: connection)
                let written = try tripUpsert.write(trips, copyThreshold: threshold, on: connection)
                // Rows neither inserted nor updated were unchanged or fenced off; only then is
                // it worth asking which (after the upsert, an unfenced row is ours).
                var skipped: [UUID] = []
                if let ownerNode, written < trips.count {
                    skipped = try connection.query(
                        "SELECT id FROM trips WHERE id = ANY ($1::uuid[]) AND owner_node IS DISTINCT FROM $2",
                        [PostgresArray(trips.map(\.id)), ownerNode]
                    ).map { try $0.decode(UUID.self, at: 0) }
                }
                try Self.driverPositions.write(positions, copyThreshold: threshold, on: connection)
                try Self.trackPoints.write(changes.trackPoints, copyThreshold: threshold, on: connection)
                return skipped
            }
        }
        if !fencedOff.isEmpty {
            let before = fenced.add(fencedOff.count, ordering: .relaxed).oldValue
            let level: Logger.Level = before == 0 ? .warning : .debug
            logger.log(
                level: level, "Trips owned by another node were left alone (another node took them over)",
                metadata: [
                    "node": "\(ownerNode ?? "")", "trips": "\(fencedOff.count)",
                    "example": "\(fencedOff[0].lowercasedText)", "fenced_total": "\(before + fencedOff.count)",
                ]
            )
        }
    }

    public func loadUsers() async throws -> [User] {
        let rows = try await read("SELECT \(Self.userColumns) FROM users ORDER BY id")
        return try rows.map(Self.decodeUser)
    }

    public func loadUnfinishedTrips() async throws -> [Trip] {
        let sql = "SELECT \(Self.tripColumns) FROM trips WHERE NOT (status = ANY ($1::text[]))"
        guard let ownerNode else {
            return try await read(sql + " ORDER BY created, id", [Self.finished]).map(Self.decodeTrip)
        }
        let rows = try await readClaiming(
            sql + " AND owner_node = $2 ORDER BY created, id", [Self.finished, ownerNode]
        )
        return try rows.map(Self.decodeTrip)
    }

    /// Whatever node owns them (it reads `trips` as committed, without claiming anything).
    public func unfinishedTrips(involving userID: Int, includingRequested: Bool) async throws -> [Trip] {
        let rows = try await read(
            """
            SELECT \(Self.tripColumns) FROM trips
            WHERE NOT (status = ANY ($1::text[]))
              AND (rider_id = $2 OR driver_id = $2 OR ($3 AND status = 'REQUESTED'))
            ORDER BY created DESC, id
            """,
            [Self.finished, userID, includingRequested]
        )
        return try rows.map(Self.decodeTrip)
    }

    public func finishedTrips(involving userID: Int) async throws -> [Trip] {
        let rows = try await read(
            """
            SELECT \(Self.tripColumns) FROM trips
            WHERE status = ANY ($1::text[]) AND (rider_id = $2 OR driver_id = $2)
            ORDER BY created DESC, id
            """,
            [Self.finished, userID]
        )
        return try rows.map(Self.decodeTrip)
    }

    public func trip(id: UUID) async throws -> Trip? {
        let rows = try await read("SELECT \(Self.tripColumns) FROM trips WHERE id = $1::uuid", [id])
        return try rows.first.map(Self.decodeTrip)
    }

    public func track(of tripID: UUID) async throws -> [TrackPoint] {
        let rows = try await read(
            "SELECT \(Self.trackPointColumns) FROM trip_track_points WHERE trip_id = $1::uuid ORDER BY seq", [tripID]
        )
        return try rows.map(Self.decodeTrackPoint)
    }

    public func loadUnfinishedTracks() async throws -> [UUID: [TrackPoint]] {
        let rows: PostgresRows
        if let ownerNode {
            rows = try await readClaiming(Self.ownedUnfinishedTracksSQL, [Self.finished, ownerNode])
        } else {
            rows = try await read(Self.unfinishedTracksSQL, [Self.finished])
        }
        return try Self.groupedTracks(rows)
    }

    /// Track points (`trackPointColumns`) grouped by trip, in row order.
    static func groupedTracks(_ rows: PostgresRows) throws -> [UUID: [TrackPoint]] {
        var tracks: [UUID: [TrackPoint]] = [:]
        for row in rows {
            let point = try Self.decodeTrackPoint(row)
            tracks[point.tripID, default: []].append(point)
        }
        return tracks
    }

    private func read(_ sql: String, _ parameters: [any PostgresTextEncodable] = []) async throws -> PostgresRows {
        try await reader.retryingOnConnectionLoss { connection in
            try connection.query(sql, parameters)
        }
    }

    /// Cluster mode: claims the unowned unfinished trips for `ownerNode` (`$2`), then runs `sql`,
    /// in one transaction. A second node claiming at the same time waits for the first one's
    /// transaction (an advisory lock), then finds those rows owned and skips them. Claiming again
    /// is harmless, so a retry after a lost connection is too.
    private func readClaiming(_ sql: String, _ parameters: [any PostgresTextEncodable]) async throws -> PostgresRows {
        try await reader.retryingOnConnectionLoss { connection in
            try connection.transaction { connection in
                try connection.query("SELECT pg_advisory_xact_lock($1)", [Self.claimLockKey])
                try connection.query(Self.claimUnownedSQL, Array(parameters.prefix(2)))
                return try connection.query(sql, parameters)
            }
        }
    }

    static func decodeUser(_ row: PostgresRow) throws -> User {
        let id = try row.decode(Int.self, at: 0)
        let group = try row.decode(String.self, at: 4)
        guard let userGroup = UserGroup(rawValue: group) else {
            throw SnapshotStoreError.unreadableValue(table: "users", column: "grp", rowID: String(id), value: group)
        }
        return User(
            id: id, username: try row.decode(String.self, at: 1), firstName: try row.decode(String.self, at: 2),
            lastName: try row.decode(String.self, at: 3), group: userGroup,
            photo: try row.decodeIfPresent(String.self, at: 5), passwordHash: try row.decode(String.self, at: 6)
        )
    }

    static func decodeTrip(_ row: PostgresRow) throws -> Trip {
        let id = try row.decode(UUID.self, at: 0)
        let status = try row.decode(String.self, at: 5)
        guard let tripStatus = TripStatus(rawValue: status) else {
            throw SnapshotStoreError.unreadableValue(
                table: "trips", column: "status", rowID: id.lowercasedText, value: status
            )
        }
        return Trip(
            id: id, created: Timestamp(microseconds: try row.decode(Int64.self, at: 1)),
            updated: Timestamp(microseconds: try row.decode(Int64.self, at: 2)),
            pickUpAddress: try row.decode(String.self, at: 3), dropOffAddress: try row.decode(String.self, at: 4),
            status: tripStatus, riderID: try row.decodeIfPresent(Int.self, at: 6),
            driverID: try row.decodeIfPresent(Int.self, at: 7),
            pickUpLocation: try .stored(
                "pick_up", lat: try row.decodeIfPresent(Double.self, at: 9),
                lng: try row.decodeIfPresent(Double.self, at: 10), tripID: id.lowercasedText
            ),
            dropOffLocation: try .stored(
                "drop_off", lat: try row.decodeIfPresent(Double.self, at: 11),
                lng: try row.decodeIfPresent(Double.self, at: 12), tripID: id.lowercasedText
            ),
            seq: try row.decode(Int64.self, at: 8)
        )
    }

    /// A track point from `trackPointColumns`.
    static func decodeTrackPoint(_ row: PostgresRow) throws -> TrackPoint {
        TrackPoint(
            tripID: try row.decode(UUID.self, at: 0), seq: try row.decode(Int64.self, at: 1),
            fix: LocationFix(
                point: GeoPoint(lat: try row.decode(Double.self, at: 2), lng: try row.decode(Double.self, at: 3)),
                heading: try row.decodeIfPresent(Double.self, at: 4), speed: try row.decodeIfPresent(Double.self, at: 5),
                accuracy: try row.decodeIfPresent(Double.self, at: 6),
                timestamp: Timestamp(microseconds: try row.decode(Int64.self, at: 7))
            )
        )
    }

    /// A fix's column values, in `fixColumns` order (nil is NULL).
    private static func fields(_ fix: LocationFix) -> [(any PostgresEncodable)?] {
        [fix.point.lat, fix.point.lng, fix.heading, fix.speed, fix.accuracy, fix.timestamp.microseconds]
    }
}

/// Upserts rows of one entity into its table by primary key (the leading columns), in batches.
struct PostgresUpsert<Row: Sendable>: Sendable {
    let table: String
    /// Every column with its SQL type, the primary key's columns first.
    let columns: [(name: String, type: String)]
    /// How many leading `columns` make up the primary key.
    var keyCount = 1
    var onConflict = ConflictAction.update
    /// With `.update`: a further condition a stored row (`t`) must meet to take the incoming
    /// values (`EXCLUDED`); a row that fails it is left as it is. Nil: no condition.
    var fence: String? = nil
    /// One entity's column values, in `columns` order (nil is NULL).
    let fields: @Sendable (Row) -> [(any PostgresEncodable)?]

    /// Parameters in one multi-row `INSERT`: PostgreSQL's limit is 65,535.
    static var maxParameters: Int { 60_000 }

    /// The column names, comma-separated, in `columns` order.
    var columnList: String { columns.map(\.name).joined(separator: ", ") }

    private var keyList: String { columns.prefix(keyCount).map(\.name).joined(separator: ", ") }

    /// `INSERT INTO table AS t (columns) <source> ON CONFLICT (key) DO UPDATE …`, skipping rows
    /// whose stored values are already the same; or `… DO NOTHING` for rows that are kept.
    func upsertSQL(source: String) -> String {
        let insert = "INSERT INTO \(table) AS t (\(columnList)) \(source) ON CONFLICT (\(keyList)) "
        switch onConflict {
        case .keep:
            return insert + "DO NOTHING"
        case .update:
            let others = columns.dropFirst(keyCount).map(\.name)
            let assignments = others.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
            let stored = others.map { "t.\($0)" }.joined(separator: ", ")
            let incoming = others.map { "EXCLUDED.\($0)" }.joined(separator: ", ")
            let changed = "(\(stored)) IS DISTINCT FROM (\(incoming))"
            let condition = fence.map { "\(changed) AND (\($0))" } ?? changed
            return insert + "DO UPDATE SET \(assignments) WHERE \(condition)"
        }
    }

    /// Writes `rows` inside the caller's transaction; returns how many rows were inserted or
    /// updated (fewer than `rows.count` when stored rows were unchanged, kept or fenced off).
    @discardableResult
    func write(_ rows: [Row], copyThreshold: Int, on connection: isolated PostgresConnection) throws -> Int {
        guard !rows.isEmpty else { return 0 }
        if rows.count >= copyThreshold {
            return try writeThroughStaging(rows, on: connection)
        } else {
            return try writeValues(rows, on: connection)
        }
    }

    /// Multi-row `INSERT … VALUES ($1, …), (…)`, in as few statements as the parameter limit allows.
    private func writeValues(_ rows: [Row], on connection: isolated PostgresConnection) throws -> Int {
        let rowsPerStatement = Self.maxParameters / columns.count
        var written = 0
        for start in stride(from: 0, to: rows.count, by: rowsPerStatement) {
            let chunk = rows[start..<min(start + rowsPerStatement, rows.count)]
            var parameters: [(any PostgresTextEncodable)?] = []
            parameters.reserveCapacity(chunk.count * columns.count)
            var placeholders: [String] = []
            placeholders.reserveCapacity(chunk.count)
            for row in chunk {
                let values = fields(row)
                let first = parameters.count
                for value in values { parameters.append(value) }
                let row = columns.enumerated().map { index, column in "$\(first + index + 1)::\(column.type)" }
                placeholders.append("(" + row.joined(separator: ", ") + ")")
            }
            let result = try connection.query(
                upsertSQL(source: "VALUES " + placeholders.joined(separator: ", ")), parameters
            )
            written += result.affectedRows ?? 0
        }
        return written
    }

    /// COPY into a staging table that lives until the transaction ends, then one merge.
    private func writeThroughStaging(_ rows: [Row], on connection: isolated PostgresConnection) throws -> Int {
        let staging = "staging_\(table)"
        try connection.execute(script: "CREATE TEMP TABLE \(staging) (LIKE \(table)) ON COMMIT DROP")
        let copied = try connection.copyIn("COPY \(staging) (\(columnList)) FROM STDIN (FORMAT binary)") { writer in
            try encode(rows, into: &writer)
        }
        guard copied == rows.count else {
            throw PostgresError(kind: .client, message: "COPY into \(staging) took \(copied) of \(rows.count) rows")
        }
        // In key order, the merge walks the primary key index (and the table) front to back
        // instead of at random: a fifth to a third faster for 100,000 rows.
        let merged = try connection.query(
            upsertSQL(source: "SELECT \(columnList) FROM \(staging) ORDER BY \(keyList)")
        )
        return merged.affectedRows ?? 0
    }

    /// The rows as binary COPY rows, one field per column (in `columns` order).
    func encode(_ rows: [Row], into writer: inout PostgresCopyWriter) throws {
        for row in rows {
            for value in fields(row) {
                try writer.append(value)
            }
            try writer.endRow()
        }
    }
}

extension PostgresSnapshotStore {
    /// The CPU work of a large `write(_:)` short of the database, for the micro-benchmarks under
    /// `Benchmarks/`: every table of `changes` copied out of the set and encoded as the binary
    /// COPY rows `write` streams from `copyThreshold` rows on (single-node trip rows). The rows
    /// go into a `PostgresCopyWriter` that is never sent. Returns the rows encoded.
    @_spi(Benchmarks)
    public static func encodeCopyRows(of changes: ChangeSet) throws -> Int {
        // Never sent (`finish` is never called), so the writer never touches the connection.
        var writer = PostgresCopyWriter(handle: OpaquePointer(bitPattern: 1)!)
        try users.encode(Array(changes.users.values), into: &writer)
        try trips.encode(Array(changes.trips.values), into: &writer)
        try driverPositions.encode(Array(changes.driverPositions.values), into: &writer)
        try trackPoints.encode(changes.trackPoints, into: &writer)
        return writer.rowCount
    }
}
