import Foundation
import GRDB
import Hub
import PostgresClient
@testable import Persistence

/// Direct access to a fixture's database, beside the store: for schema versions the store no
/// longer creates, and for rows the store writes but has no read for.
extension StoreFixture {
    private var sqlitePath: String {
        location.appendingPathComponent(SQLiteSnapshotStore.fileName).path
    }

    /// Creates the schema as version 1 left it (before any store is opened).
    func createVersion1Schema() async throws {
        switch kind {
        case .sqlite:
            try FileManager.default.createDirectory(at: location, withIntermediateDirectories: true)
            try SQLiteSnapshotStore.migrator.migrate(try DatabaseQueue(path: sqlitePath), upTo: "v1")
        case .postgres:
            try await withConnection { connection in
                _ = try await connection.retryingOnConnectionLoss { connection in
                    try PostgresMigrations.apply(on: connection, upTo: 1)
                }
            }
        }
    }

    /// Runs fixed SQL statements (separated by semicolons) in the fixture's database.
    func execute(_ sql: String) async throws {
        switch kind {
        case .sqlite:
            try await DatabaseQueue(path: sqlitePath).write { db in try db.execute(sql: sql) }
        case .postgres:
            try await withConnection { connection in _ = try await connection.execute(script: sql) }
        }
    }

    /// The stored driver positions, by driver id.
    func driverPositions() async throws -> [DriverPosition] {
        let sql =
            "SELECT driver_id, lat, lng, heading, speed, accuracy, recorded FROM driver_positions ORDER BY driver_id"
        switch kind {
        case .sqlite:
            return try await DatabaseQueue(path: sqlitePath).read { db in
                try Row.fetchAll(db, sql: sql).map { row in
                    DriverPosition(
                        driverID: row[0],
                        fix: LocationFix(
                            point: GeoPoint(lat: row[1], lng: row[2]), heading: row[3], speed: row[4], accuracy: row[5],
                            timestamp: Timestamp(microseconds: row[6])
                        )
                    )
                }
            }
        case .postgres:
            return try await withConnection { connection in
                try await connection.query(sql).map { row in
                    DriverPosition(
                        driverID: try row.decode(Int.self, at: 0),
                        fix: LocationFix(
                            point: GeoPoint(
                                lat: try row.decode(Double.self, at: 1), lng: try row.decode(Double.self, at: 2)
                            ),
                            heading: try row.decodeIfPresent(Double.self, at: 3),
                            speed: try row.decodeIfPresent(Double.self, at: 4),
                            accuracy: try row.decodeIfPresent(Double.self, at: 5),
                            timestamp: Timestamp(microseconds: try row.decode(Int64.self, at: 6))
                        )
                    )
                }
            }
        }
    }

    /// Every column of the store's own tables as `table.column`, sorted (the migration
    /// bookkeeping tables left out).
    func columns() async throws -> [String] {
        try await names(
            sqlite: """
                SELECT m.name || '.' || c.name FROM sqlite_master m, pragma_table_info(m.name) c
                WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'grdb_migrations'
                """,
            postgres: """
                SELECT table_name || '.' || column_name FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'
                """
        )
    }

    /// The secondary indexes of the store's own tables as `table.index`, sorted (primary keys
    /// and unique constraints, which each database names its own way, left out).
    func indexes() async throws -> [String] {
        try await names(
            sqlite: """
                SELECT tbl_name || '.' || name FROM sqlite_master
                WHERE type = 'index' AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'
                """,
            postgres: """
                SELECT tablename || '.' || indexname FROM pg_indexes
                WHERE schemaname = current_schema() AND indexdef NOT LIKE 'CREATE UNIQUE%'
                """
        )
    }

    /// The one text column a catalog query returns, sorted: `sqlite` or `postgres` by the store.
    private func names(sqlite: String, postgres: String) async throws -> [String] {
        let names: [String]
        switch kind {
        case .sqlite:
            names = try await DatabaseQueue(path: sqlitePath).read { db in try String.fetchAll(db, sql: sqlite) }
        case .postgres:
            names = try await withConnection { connection in
                try await connection.query(postgres).map { try $0.decode(String.self, at: 0) }
            }
        }
        return names.sorted()
    }

    /// Runs `body` with a connection of its own to the fixture's PostgreSQL schema.
    private func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        guard let databaseURL else { throw MissingDatabase() }
        let connection = PostgresConnection(url: databaseURL)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }
}
