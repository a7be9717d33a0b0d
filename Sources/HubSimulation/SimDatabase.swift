import Foundation
import Persistence
import PostgresClient

/// The real store of one run: SQLite in a folder of its own, or, when the options name a
/// PostgreSQL server, a schema of its own on it (made empty before the run, dropped after it), so
/// runs side by side never see each other's rows.
///
/// Every call goes through `BlockingBridge`: it runs on the harness thread, outside any job.
struct SimDatabase {
    let store: any SnapshotStore
    /// What the run removes when it ends: its SQLite folder, or its schema (and the admin URL).
    private let cleanUp: Cleanup

    private enum Cleanup {
        case folder(String)
        case schema(name: String, adminURL: String, store: PostgresSnapshotStore)
    }

    /// The store for `seed`, created empty (not yet migrated).
    static func make(seed: UInt64, options: SimulationOptions) throws -> SimDatabase {
        let unique = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        guard let adminURL = options.databaseURL else {
            let directory = URL(fileURLWithPath: options.directory).appendingPathComponent("run-\(seed)-\(unique)").path
            return SimDatabase(store: try SQLiteSnapshotStore(directory: directory), cleanUp: .folder(directory))
        }
        let schema = "taxihub_sim_\(seed)_\(unique)"
        try admin(adminURL, "CREATE SCHEMA \(schema)")
        let store = PostgresSnapshotStore(url: PostgresConnection.schemaURL(adminURL, schema: schema))
        return SimDatabase(store: store, cleanUp: .schema(name: schema, adminURL: adminURL, store: store))
    }

    /// Closes the store and removes what the run made.
    func remove() {
        switch cleanUp {
        case .folder(let directory):
            try? FileManager.default.removeItem(atPath: directory)
        case .schema(let name, let adminURL, let store):
            try? BlockingBridge.run { await store.close() }
            try? Self.admin(adminURL, "DROP SCHEMA IF EXISTS \(name) CASCADE")
        }
    }

    /// Runs fixed SQL on a connection of its own to `url`.
    private static func admin(_ url: String, _ sql: String) throws {
        try BlockingBridge.run {
            let connection = try await PostgresConnection.connect(url: url)
            do {
                _ = try await connection.query(sql)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
        }
    }
}
