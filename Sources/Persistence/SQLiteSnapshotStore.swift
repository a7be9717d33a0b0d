import Foundation
import GRDB
import Hub

/// The embedded default store: one SQLite file in the data folder, so the hub runs on a fresh
/// machine without a database server.
///
/// A GRDB `DatabasePool` keeps the file in WAL mode, so start-up reads and history queries
/// run beside the snapshot writes. Every access goes through GRDB's async API and never
/// blocks a cooperative thread.
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
        ]
    )
    /// Stored statuses of finished trips, as placeholders and values for an `IN (…)` clause.
    private static let finished = TripStatus.allCases.filter(\.isFinished).map(\.rawValue)
    private static let finishedList = "(" + finished.map { _ in "?" }.joined(separator: ", ") + ")"

    private let pool: DatabasePool

    /// Opens (creating if needed) `<directory>/taxihub.sqlite`, creating the directory too.
    /// Call `migrate()` before anything else.
    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.label = "TaxiHub"
        let path = URL(fileURLWithPath: directory).appendingPathComponent(Self.fileName).path
        pool = try DatabasePool(path: path, configuration: configuration)
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
        try await pool.write { db in
            try Self.users.execute(changes.users.values.map(Self.values), in: db)
            try Self.trips.execute(changes.trips.values.map(Self.values), in: db)
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
        try await fetchTrips(where: "id = ?", arguments: [id.uuidString.lowercased()]).first
    }

    private func fetchTrips(where condition: String, arguments: StatementArguments) async throws -> [Trip] {
        try await pool.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM trips WHERE \(condition)", arguments: arguments)
            return try Array(rows.map(Self.decodeTrip))
        }
    }

    /// The schema's versions, applied in order; GRDB records which ones a file already has.
    private static var migrator: DatabaseMigrator {
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
            trip.id.uuidString.lowercased().databaseValue, trip.created.microseconds.databaseValue,
            trip.updated.microseconds.databaseValue, trip.pickUpAddress.databaseValue,
            trip.dropOffAddress.databaseValue, trip.status.rawValue.databaseValue, trip.riderID.databaseValue,
            trip.driverID.databaseValue,
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
            riderID: try row.decode(forColumn: "rider_id"), driverID: try row.decode(forColumn: "driver_id")
        )
    }
}
