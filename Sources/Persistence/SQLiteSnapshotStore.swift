import DedicatedThread
import Foundation
import GRDB
import Hub

/// The embedded default store: one SQLite file in the data folder, so the hub runs on a fresh
/// machine without a database server.
///
/// A GRDB `DatabasePool` keeps the file in WAL mode, so start-up reads and history queries
/// run beside the snapshot writes. Reads go through GRDB's async API; snapshot writes run on a
/// thread of their own at a lower priority (`SQLiteWriter`). Neither blocks a cooperative thread
/// or an event loop.
public final class SQLiteSnapshotStore: SnapshotStore {
    /// Name of the database file inside the store's directory.
    public static let fileName = "taxihub.sqlite"

    private static let users = SQLiteUpsert(
        table: "users",
        columns: ["id", "username", "first_name", "last_name", "grp", "photo", "password_hash"]
    )
    private static let trips = SQLiteUpsert(
        table: "trips",
        columns: [
            "id", "created", "updated", "pick_up_address", "drop_off_address", "status", "rider_id", "driver_id",
            "seq", "pick_up_lat", "pick_up_lng", "drop_off_lat", "drop_off_lng", "cancel_reason",
        ]
    )
    private static let driverPositions = SQLiteUpsert(
        table: "driver_positions", columns: ["driver_id"] + fixColumns
    )
    private static let trackPoints = SQLiteUpsert(
        table: "trip_track_points", columns: ["trip_id", "seq"] + fixColumns, keyCount: 2, onConflict: .keep
    )
    /// The columns of a `LocationFix`, in `values(_: LocationFix)` order.
    private static let fixColumns = ["lat", "lng", "heading", "speed", "accuracy", "recorded"]
    /// Stored statuses of finished trips, as placeholders and values for an `IN (…)` clause.
    private static let finished = TripStatus.allCases.filter(\.isFinished).map(\.rawValue)
    private static let finishedList = "(" + finished.map { _ in "?" }.joined(separator: ", ") + ")"

    private let pool: DatabasePool
    let writer: SQLiteWriter

    /// Opens (creating if needed) `<directory>/taxihub.sqlite`, creating the directory too.
    /// Call `migrate()` before anything else.
    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.label = "TaxiHub"
        configuration.prepareDatabase { db in
            // A snapshot touches a page per live trip (its track's newest points) and per block
            // of drivers. Measured at 5,000 track points/s (docs/benchmarks-history.md, "Where the CPU went"):
            // a multi-row upsert keeps a statement journal, the old content of every page it
            // changes, in a temporary file by default (kept in memory here); and the default
            // page cache (2 MB) read most of those pages back from the file at every snapshot.
            // The cache grows to 32 MB only as pages are used.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            try db.execute(sql: "PRAGMA cache_size = -32768")
            // Every commit synced, not only checkpoints: once a snapshot is written, the journal
            // segments it covers are deleted (`TripJournal`), so the snapshot must survive a power
            // loss as the journal would have. One sync per snapshot, once a second.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        let path = URL(fileURLWithPath: directory).appendingPathComponent(Self.fileName).path
        pool = try DatabasePool(path: path, configuration: configuration)
        writer = SQLiteWriter(pool: pool)
    }

    public func migrate() async throws {
        // GRDB has no async `migrate`; its callback form keeps the migration off this thread.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Self.migrator.asyncMigrate(pool) { result in
                continuation.resume(with: result.map { _ in })
            }
        }
    }

    public func write(_ changes: ChangeSet) async throws {
        guard !changes.isEmpty else { return }
        try await writer.write { db in
            try Self.users.execute(changes.users.values.map(Self.values), in: db)
            try Self.trips.execute(changes.trips.values.map(Self.values), in: db)
            try Self.driverPositions.execute(changes.driverPositions.values.map(Self.values), in: db)
            try Self.trackPoints.execute(changes.trackPoints.map(Self.values), in: db)
        }
    }

    public func loadUsers() async throws -> [User] {
        try await pool.read { db in
            try Array(Row.fetchCursor(db, sql: "SELECT * FROM users ORDER BY id").map(Self.decodeUser))
        }
    }

    public func loadUnfinishedTrips() async throws -> [Trip] {
        try await fetchTrips(
            where: "status NOT IN \(Self.finishedList) ORDER BY created, id",
            arguments: StatementArguments(Self.finished)
        )
    }

    public func finishedTrips(involving userID: Int) async throws -> [Trip] {
        try await fetchTrips(
            where: "status IN \(Self.finishedList) AND (rider_id = ? OR driver_id = ?) ORDER BY created DESC, id",
            arguments: StatementArguments(Self.finished) + [userID, userID]
        )
    }

    public func trip(id: UUID) async throws -> Trip? {
        try await fetchTrips(where: "id = ?", arguments: [id.lowercasedText]).first
    }

    public func track(of tripID: UUID) async throws -> [TrackPoint] {
        try await pool.read { db in
            let rows = try Row.fetchCursor(
                db, sql: "SELECT * FROM trip_track_points WHERE trip_id = ? ORDER BY seq",
                arguments: [tripID.lowercasedText]
            )
            return try Array(rows.map(Self.decodeTrackPoint))
        }
    }

    public func loadUnfinishedTracks() async throws -> [UUID: [TrackPoint]] {
        try await pool.read { db in
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT p.* FROM trip_track_points p JOIN trips t ON t.id = p.trip_id
                    WHERE t.status NOT IN \(Self.finishedList) ORDER BY p.trip_id, p.seq
                    """,
                arguments: StatementArguments(Self.finished)
            )
            var tracks: [UUID: [TrackPoint]] = [:]
            while let row = try rows.next() {
                let point = try Self.decodeTrackPoint(row)
                tracks[point.tripID, default: []].append(point)
            }
            return tracks
        }
    }

    private func fetchTrips(where condition: String, arguments: StatementArguments) async throws -> [Trip] {
        try await pool.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM trips WHERE \(condition)", arguments: arguments)
            return try Array(rows.map(Self.decodeTrip))
        }
    }

    /// The schema's versions, applied in order; GRDB records which ones a file already has.
    /// Append new versions at the end; never edit one that has shipped.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                        id INTEGER PRIMARY KEY,
                        username TEXT NOT NULL UNIQUE,
                        first_name TEXT NOT NULL,
                        last_name TEXT NOT NULL,
                        grp TEXT NOT NULL,
                        photo TEXT,
                        password_hash TEXT NOT NULL
                    );
                    CREATE TABLE trips (
                        id TEXT PRIMARY KEY NOT NULL,
                        created INTEGER NOT NULL,
                        updated INTEGER NOT NULL,
                        pick_up_address TEXT NOT NULL,
                        drop_off_address TEXT NOT NULL,
                        status TEXT NOT NULL,
                        rider_id INTEGER,
                        driver_id INTEGER
                    );
                    CREATE INDEX trips_rider_id ON trips (rider_id);
                    CREATE INDEX trips_driver_id ON trips (driver_id);
                    CREATE INDEX trips_status ON trips (status);
                    """
            )
        }
        // Column names as in PostgreSQL; doubles are REAL (8-byte IEEE, exact), `recorded` is
        // microseconds like `created`.
        migrator.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    ALTER TABLE trips ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE trips ADD COLUMN pick_up_lat REAL;
                    ALTER TABLE trips ADD COLUMN pick_up_lng REAL;
                    ALTER TABLE trips ADD COLUMN drop_off_lat REAL;
                    ALTER TABLE trips ADD COLUMN drop_off_lng REAL;
                    CREATE TABLE driver_positions (
                        driver_id INTEGER PRIMARY KEY,
                        lat REAL NOT NULL,
                        lng REAL NOT NULL,
                        heading REAL,
                        speed REAL,
                        accuracy REAL,
                        recorded INTEGER NOT NULL
                    );
                    CREATE TABLE trip_track_points (
                        trip_id TEXT NOT NULL,
                        seq INTEGER NOT NULL,
                        lat REAL NOT NULL,
                        lng REAL NOT NULL,
                        heading REAL,
                        speed REAL,
                        accuracy REAL,
                        recorded INTEGER NOT NULL,
                        PRIMARY KEY (trip_id, seq)
                    ) WITHOUT ROWID;
                    """
            )
        }
        migrator.registerMigration("v3") { db in
            // As PostgreSQL's migration 3: no query can use an index on status (start-up reads
            // unfinished trips with NOT IN), and every status change had to update it.
            try db.execute(sql: "DROP INDEX IF EXISTS trips_status")
        }
        migrator.registerMigration("v4") { db in
            // As PostgreSQL's migration 5: why a CANCELED trip ended (rider_canceled,
            // no_driver_found); NULL otherwise.
            try db.execute(sql: "ALTER TABLE trips ADD COLUMN cancel_reason TEXT")
        }
        return migrator
    }

    /// A user's column values, in `users.columns` order.
    private static func values(_ user: User) -> [DatabaseValue] {
        [
            user.id.databaseValue, user.username.databaseValue, user.firstName.databaseValue,
            user.lastName.databaseValue, user.group.rawValue.databaseValue, user.photo.databaseValue,
            user.passwordHash.databaseValue,
        ]
    }

    /// A trip's column values, in `trips.columns` order.
    private static func values(_ trip: Trip) -> [DatabaseValue] {
        [
            trip.id.lowercasedText.databaseValue, trip.created.microseconds.databaseValue,
            trip.updated.microseconds.databaseValue, trip.pickUpAddress.databaseValue,
            trip.dropOffAddress.databaseValue, trip.status.rawValue.databaseValue, trip.riderID.databaseValue,
            trip.driverID.databaseValue, trip.seq.databaseValue, (trip.pickUpLocation?.lat).databaseValue,
            (trip.pickUpLocation?.lng).databaseValue, (trip.dropOffLocation?.lat).databaseValue,
            (trip.dropOffLocation?.lng).databaseValue, (trip.cancelReason?.rawValue).databaseValue,
        ]
    }

    /// A driver position's column values, in `driverPositions.columns` order.
    private static func values(_ position: DriverPosition) -> [DatabaseValue] {
        [position.driverID.databaseValue] + values(position.fix)
    }

    /// A track point's column values, in `trackPoints.columns` order.
    private static func values(_ point: TrackPoint) -> [DatabaseValue] {
        [point.tripID.lowercasedText.databaseValue, point.seq.databaseValue] + values(point.fix)
    }

    /// A fix's column values, in `fixColumns` order.
    private static func values(_ fix: LocationFix) -> [DatabaseValue] {
        [
            fix.point.lat.databaseValue, fix.point.lng.databaseValue, fix.heading.databaseValue,
            fix.speed.databaseValue, fix.accuracy.databaseValue, fix.timestamp.microseconds.databaseValue,
        ]
    }

    private static func decodeUser(_ row: Row) throws -> User {
        let id: Int = try row.decode(forColumn: "id")
        let group: String = try row.decode(forColumn: "grp")
        guard let userGroup = UserGroup(rawValue: group) else {
            throw SnapshotStoreError.unreadableValue(table: "users", column: "grp", rowID: String(id), value: group)
        }
        return User(
            id: id, username: try row.decode(forColumn: "username"), firstName: try row.decode(forColumn: "first_name"),
            lastName: try row.decode(forColumn: "last_name"), group: userGroup, photo: try row.decode(forColumn: "photo"),
            passwordHash: try row.decode(forColumn: "password_hash")
        )
    }

    private static func decodeTrip(_ row: Row) throws -> Trip {
        let id: String = try row.decode(forColumn: "id")
        let status: String = try row.decode(forColumn: "status")
        guard let uuid = UUID(uuidString: id) else {
            throw SnapshotStoreError.unreadableValue(table: "trips", column: "id", rowID: id, value: id)
        }
        guard let tripStatus = TripStatus(rawValue: status) else {
            throw SnapshotStoreError.unreadableValue(table: "trips", column: "status", rowID: id, value: status)
        }
        return Trip(
            id: uuid, created: Timestamp(microseconds: try row.decode(forColumn: "created")),
            updated: Timestamp(microseconds: try row.decode(forColumn: "updated")),
            pickUpAddress: try row.decode(forColumn: "pick_up_address"),
            dropOffAddress: try row.decode(forColumn: "drop_off_address"), status: tripStatus,
            riderID: try row.decode(forColumn: "rider_id"), driverID: try row.decode(forColumn: "driver_id"),
            pickUpLocation: try .stored(
                "pick_up", lat: try row.decode(forColumn: "pick_up_lat"), lng: try row.decode(forColumn: "pick_up_lng"),
                tripID: id
            ),
            dropOffLocation: try .stored(
                "drop_off", lat: try row.decode(forColumn: "drop_off_lat"),
                lng: try row.decode(forColumn: "drop_off_lng"), tripID: id
            ),
            seq: try row.decode(forColumn: "seq"),
            cancelReason: try .stored(try row.decode(forColumn: "cancel_reason"), tripID: id)
        )
    }

    private static func decodeTrackPoint(_ row: Row) throws -> TrackPoint {
        let tripID: String = try row.decode(forColumn: "trip_id")
        guard let uuid = UUID(uuidString: tripID) else {
            throw SnapshotStoreError.unreadableValue(
                table: "trip_track_points", column: "trip_id", rowID: tripID, value: tripID
            )
        }
        return TrackPoint(
            tripID: uuid, seq: try row.decode(forColumn: "seq"),
            fix: LocationFix(
                point: GeoPoint(lat: try row.decode(forColumn: "lat"), lng: try row.decode(forColumn: "lng")),
                heading: try row.decode(forColumn: "heading"), speed: try row.decode(forColumn: "speed"),
                accuracy: try row.decode(forColumn: "accuracy"),
                timestamp: Timestamp(microseconds: try row.decode(forColumn: "recorded"))
            )
        )
    }
}

/// Runs the SQLite store's snapshot writes on one thread of its own, niced by 10. A write is a
/// burst of CPU work (thousands of rows once a second under load) with nobody waiting on it;
/// on the same cores as the event loops it held GPS frames up for its whole length, which made
/// most of the location p99 (docs/benchmarks-history.md). At the lower priority the event loops take the
/// cores first whenever both want them, and the write runs in full otherwise.
///
/// GRDB's synchronous `write` runs its closure on the calling thread when the database is not
/// busy elsewhere (it is a serial dispatch queue's `sync`), so the work happens on this thread.
actor SQLiteWriter {
    private let pool: DatabasePool
    private let executor = ThreadExecutor(name: "sqlite-writer", niceness: 10)

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    /// The writer's thread, once it runs.
    nonisolated var threadID: pthread_t? {
        executor.threadID
    }

    init(pool: DatabasePool) {
        self.pool = pool
    }

    deinit {
        executor.shutdown()
    }

    func write<T: Sendable>(_ updates: @Sendable (Database) throws -> T) throws -> T {
        try pool.write(updates)
    }
}

extension SQLiteSnapshotStore {
    /// The CPU work of `write(_:)` short of the database, for the micro-benchmarks under
    /// `Benchmarks/`: every table of `changes` turned into the column values `write` binds, row
    /// by row, and the text of each batched statement (`SQLiteUpsert.sql(rowCount:)`).
    @_spi(Benchmarks)
    public static func encodeRows(of changes: ChangeSet) -> SQLiteEncodedRows {
        var encoded = SQLiteEncodedRows()
        func add(_ rows: [[DatabaseValue]], for upsert: SQLiteUpsert) {
            for start in stride(from: 0, to: rows.count, by: upsert.rowsPerStatement) {
                encoded.statements.append(upsert.sql(rowCount: min(upsert.rowsPerStatement, rows.count - start)))
            }
            encoded.tables.append(rows)
        }
        add(changes.users.values.map(Self.values), for: users)
        add(changes.trips.values.map(Self.values), for: trips)
        add(changes.driverPositions.values.map(Self.values), for: driverPositions)
        add(changes.trackPoints.map(Self.values), for: trackPoints)
        return encoded
    }
}

/// What `SQLiteSnapshotStore.encodeRows(of:)` made: a benchmark that keeps it keeps all of the work.
@_spi(Benchmarks)
public struct SQLiteEncodedRows: Sendable {
    /// Each table's rows, each row its column values.
    var tables: [[[DatabaseValue]]] = []
    var statements: [String] = []

    /// Rows encoded, all tables together.
    public var rowCount: Int { tables.reduce(0) { $0 + $1.count } }
}
