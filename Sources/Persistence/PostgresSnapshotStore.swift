import Foundation
import Hub
import PostgresClient

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
/// It writes trip rows as their latest state, whoever wrote them before. A store that writes them
/// under other rules (a cluster node's, which fences rows owned by another node) builds on
/// `write(_:trips:afterTrips:)` and `reading(_:)`, which the package's other modules see.
public final class PostgresSnapshotStore: SnapshotStore {
    /// From this many rows of one table, a write goes through COPY and a staging table.
    public static let defaultCopyThreshold = 1_000

    package static let users = PostgresUpsert<User>(
        table: "users",
        columns: [
            ("id", "bigint"), ("username", "text"), ("first_name", "text"), ("last_name", "text"), ("grp", "text"),
            ("photo", "text"), ("password_hash", "text"),
        ]
    ) { user in
        [user.id, user.username, user.firstName, user.lastName, user.group.rawValue, user.photo, user.passwordHash]
    }

    package static let trips = PostgresUpsert<Trip>(
        table: "trips",
        columns: [
            ("id", "uuid"), ("created", "bigint"), ("updated", "bigint"), ("pick_up_address", "text"),
            ("drop_off_address", "text"), ("status", "text"), ("rider_id", "bigint"), ("driver_id", "bigint"),
            ("seq", "bigint"), ("pick_up_lat", "float8"), ("pick_up_lng", "float8"), ("drop_off_lat", "float8"),
            ("drop_off_lng", "float8"), ("cancel_reason", "text"),
        ]
    ) { trip in
        [
            trip.id, trip.created.microseconds, trip.updated.microseconds, trip.pickUpAddress, trip.dropOffAddress,
            trip.status.rawValue, trip.riderID, trip.driverID, trip.seq, trip.pickUpLocation?.lat,
            trip.pickUpLocation?.lng, trip.dropOffLocation?.lat, trip.dropOffLocation?.lng, trip.cancelReason?.rawValue,
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

    package static let userColumns = users.columnList
    package static let tripColumns = trips.columnList
    package static let trackPointColumns = trackPoints.columnList
    /// `trackPointColumns` of `trip_track_points p`, for queries that join it with `trips t`.
    package static let joinedTrackPointColumns = trackPoints.columns.map { "p.\($0.name)" }.joined(separator: ", ")
    /// The points of unfinished trips (statuses not in `$1`), grouped by trip, ascending `seq`.
    private static let unfinishedTracksSQL = """
        SELECT \(joinedTrackPointColumns)
        FROM trip_track_points p JOIN trips t ON t.id = p.trip_id
        WHERE NOT (t.status = ANY ($1::text[])) ORDER BY p.trip_id, p.seq
        """
    /// Stored statuses of finished trips, as one `text[]` parameter.
    package static let finished = PostgresArray(TripStatus.allCases.filter(\.isFinished).map(\.rawValue))

    /// `users` for rows that may exist already (written by another writer meanwhile): stored
    /// rows are kept.
    package static let keptUsers: PostgresUpsert<User> = {
        var upsert = users
        upsert.onConflict = .keep
        return upsert
    }()

    private let writer: PostgresConnection
    private let reader: PostgresConnection
    private let copyThreshold: Int

    /// A store on the database at `url` (see `PostgresConnection.init(url:)` for the forms it
    /// takes). It does not connect yet: the first call does, so a server that is down only fails
    /// calls, which succeed once it is back. Call `migrate()` before anything else.
    ///
    /// - Parameter copyThreshold: rows of one table from which a write uses COPY (tests lower it).
    public init(url: String, copyThreshold: Int = PostgresSnapshotStore.defaultCopyThreshold) {
        // Snapshots may wait; requests and sockets may not: the writer's thread runs at nice 10.
        writer = PostgresConnection(url: url, threadName: "pg-writer", niceness: 10)
        reader = PostgresConnection(url: url, threadName: "pg-reader")
        self.copyThreshold = max(1, copyThreshold)
    }

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
        _ = try await write(changes, trips: Self.trips) { _, _, _ in }
    }

    /// Writes `changes` as `write(_:)` does, in one transaction, but with `tripUpsert` for the
    /// trip rows, and runs `afterTrips` in that transaction right after them, with the trips and
    /// how many rows the upsert inserted or updated. Returns what `afterTrips` returned; nil for an
    /// empty set, which writes nothing.
    package func write<Checked: Sendable>(
        _ changes: ChangeSet, trips tripUpsert: PostgresUpsert<Trip>,
        afterTrips: @escaping @Sendable (isolated PostgresConnection, _ trips: [Trip], _ written: Int) throws -> Checked
    ) async throws -> Checked? {
        guard !changes.isEmpty else { return nil }
        let threshold = copyThreshold
        // Everything, down to copying the values out of the set, runs on the writer's thread.
        return try await writer.retryingOnConnectionLoss { connection in
            let users = Array(changes.users.values)
            let trips = Array(changes.trips.values)
            let positions = Array(changes.driverPositions.values)
            return try connection.transaction { connection in
                try Self.users.write(users, copyThreshold: threshold, on: connection)
                let written = try tripUpsert.write(trips, copyThreshold: threshold, on: connection)
                let checked = try afterTrips(connection, trips, written)
                try Self.driverPositions.write(positions, copyThreshold: threshold, on: connection)
                try Self.trackPoints.write(changes.trackPoints, copyThreshold: threshold, on: connection)
                return checked
            }
        }
    }

    /// Runs `body` on the reading connection (the one start-up loads and history use), once more
    /// on a new connection when a working one broke under it: only for work safe to repeat.
    package func reading<T: Sendable>(_ body: @escaping @Sendable (isolated PostgresConnection) throws -> T) async throws -> T {
        try await reader.retryingOnConnectionLoss(body)
    }

    public func loadUsers() async throws -> [User] {
        let rows = try await read("SELECT \(Self.userColumns) FROM users ORDER BY id")
        return try rows.map(Self.decodeUser)
    }

    public func loadUnfinishedTrips() async throws -> [Trip] {
        let rows = try await read(
            "SELECT \(Self.tripColumns) FROM trips WHERE NOT (status = ANY ($1::text[])) ORDER BY created, id", [Self.finished]
        )
        return try rows.map(Self.decodeTrip)
    }

    /// Every such row, whoever wrote it (it reads `trips` as committed).
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
        try Self.groupedTracks(try await read(Self.unfinishedTracksSQL, [Self.finished]))
    }

    /// Track points (`trackPointColumns`) grouped by trip, in row order.
    package static func groupedTracks(_ rows: PostgresRows) throws -> [UUID: [TrackPoint]] {
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

    /// A user from `userColumns`.
    package static func decodeUser(_ row: PostgresRow) throws -> User {
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

    /// A trip from `tripColumns`.
    package static func decodeTrip(_ row: PostgresRow) throws -> Trip {
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
            seq: try row.decode(Int64.self, at: 8),
            cancelReason: try .stored(try row.decodeIfPresent(String.self, at: 13), tripID: id.lowercasedText)
        )
    }

    /// A track point from `trackPointColumns`.
    package static func decodeTrackPoint(_ row: PostgresRow) throws -> TrackPoint {
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

extension PostgresSnapshotStore {
    /// The CPU work of a large `write(_:)` short of the database, for the micro-benchmarks under
    /// `Benchmarks/`: every table of `changes` copied out of the set and encoded as the binary
    /// COPY rows `write` streams from `copyThreshold` rows on (single-node trip rows). The rows
    /// go into a `PostgresCopyWriter` that is never sent. Returns the rows encoded.
    @_spi(Benchmarks)
    public static func encodeCopyRows(of changes: ChangeSet) throws -> Int {
        var writer = PostgresCopyWriter.unsent()
        try users.encode(Array(changes.users.values), into: &writer)
        try trips.encode(Array(changes.trips.values), into: &writer)
        try driverPositions.encode(Array(changes.driverPositions.values), into: &writer)
        try trackPoints.encode(changes.trackPoints, into: &writer)
        return writer.rowCount
    }
}
