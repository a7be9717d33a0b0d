import Foundation
import PostgresClient
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The PostgreSQL server the tests use, and a fresh schema on it for each test.
///
/// The server is the one `TAXI_HUB_TEST_DATABASE_URL` names (CI starts it with
/// `scripts/postgres start` and exports that variable). When the variable is unset, the first
/// test that needs PostgreSQL starts a private throwaway cluster with the same script, on a free
/// loopback port in a folder of this test process, and the process stops and removes it when it
/// exits.
///
/// Each test gets a schema of its own (`taxihub_test_<uuid>`) in that database, dropped
/// afterwards, so tests run in parallel without seeing each other's rows. Its URL makes the schema
/// the connection's `search_path` and its name the connection's `application_name`, so a test can
/// find (and terminate) its own sessions. A schema, unlike a database per test, costs no
/// checkpoint and no copy of a template when made and dropped.
public actor PostgresTestServer {
    public static let shared = PostgresTestServer()

    /// The variable naming the server (a database on it that the tests can connect to).
    public static let environmentVariable = "TAXI_HUB_TEST_DATABASE_URL"

    private var started: Task<String, any Error>?
    private var admin: PostgresConnection?

    /// The URL of the database the tests work in, starting a private server first if needed.
    public func adminURL() async throws -> String {
        if let started { return try await started.value }
        let task = Task { try await Self.locateOrStart() }
        started = task
        return try await task.value
    }

    /// Creates an empty schema, runs `body` with a URL whose connections work in it, and drops it
    /// with everything in it (also when `body` throws).
    public nonisolated func withSchema<T>(_ body: (String) async throws -> T) async throws -> T {
        let name = "taxihub_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let adminURL = try await adminURL()
        try await adminQuery("CREATE SCHEMA \(name)")
        let result: Result<T, any Error>
        do {
            result = .success(try await body(PostgresConnection.schemaURL(adminURL, schema: name)))
        } catch {
            result = .failure(error)
        }
        try await adminQuery("DROP SCHEMA \(name) CASCADE")
        return try result.get()
    }

    /// Runs fixed SQL (no data in it) in the tests' database, outside any test's schema.
    @discardableResult
    public func adminQuery(_ sql: String, _ parameters: [any PostgresTextEncodable] = []) async throws -> PostgresRows {
        let connection: PostgresConnection
        if let admin {
            connection = admin
        } else {
            connection = PostgresConnection(url: try await adminURL(), threadName: "pg-test-admin")
            admin = connection
        }
        return try await connection.retryingOnConnectionLoss { connection in
            try connection.query(sql, parameters)
        }
    }

    // MARK: - The private cluster

    struct TestServerError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// The folder of the private cluster this process started, for the exit handler.
    private static let privateCluster = Mutex<String?>(nil)

    /// The project's `scripts/postgres`.
    public static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/postgres").path
    }

    private static func locateOrStart() async throws -> String {
        if let url = ProcessInfo.processInfo.environment[environmentVariable], !url.isEmpty {
            return url
        }
        let directory = "/tmp/taxihub-pg-test-\(getpid())"
        let port = try FreePort.find()
        privateCluster.withLock { $0 = directory }
        atexit { PostgresTestServer.stopPrivateCluster() }
        let output = try await run(script, ["start", directory, String(port)])
        let prefix = "export \(environmentVariable)="
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }) else {
            throw TestServerError(message: "scripts/postgres start printed no URL: \(output)")
        }
        return String(line.dropFirst(prefix.count))
    }

    /// Stops the private cluster, if this process started one; runs at exit.
    private static func stopPrivateCluster() {
        guard let directory = privateCluster.withLock({ $0 }) else { return }
        _ = try? ChildProcess.spawn(script, ["stop", directory], outputPath: "/dev/null").waitUntilExitBlocking()
    }

    /// Runs `executable` and returns what it printed; throws when it exits non-zero.
    public static func run(_ executable: String, _ arguments: [String]) async throws -> String {
        try await ChildProcess.run(executable, arguments)
    }
}
