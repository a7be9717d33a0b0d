import Foundation
import Testing

/// The stores a hub process can run on in these tests: the embedded default always, and
/// PostgreSQL when `TAXI_HUB_TEST_DATABASE_URL` names a server (as `scripts/test` and CI do).
public enum StoreUnderTest: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    public var testDescription: String { rawValue }

    public static var available: [StoreUnderTest] {
        TestDatabases.serverURL == nil ? [.sqlite] : allCases
    }

    /// Extra `serve` arguments for this store, with a fresh database where one is needed.
    public func arguments() async throws -> [String] {
        switch self {
        case .sqlite: []
        case .postgres: ["--database-url", try await TestDatabases.create()]
        }
    }
}

/// Fresh databases on the test PostgreSQL server, one per test so tests run in parallel.
public enum TestDatabases {
    public static var serverURL: URLComponents? {
        ProcessInfo.processInfo.environment[PostgresTestServer.environmentVariable].flatMap(URLComponents.init(string:))
    }

    public static let psql = FileManager.default.isExecutableFile(atPath: "/usr/bin/psql") ? "/usr/bin/psql" : "psql"

    /// Creates an empty database and returns its URL.
    public static func create() async throws -> String {
        var url = try #require(serverURL)
        let name = "taxihub_test_\(UUID().uuidString.prefix(8).lowercased())"
        try await ChildProcess.run(psql, ["-X", "-q", "-d", url.string!, "-c", "CREATE DATABASE \(name)"])
        url.path = "/\(name)"
        return url.string!
    }
}

/// A private PostgreSQL cluster that a test may stop and start again, for outage tests;
/// managed with the project's `scripts/postgres`.
public struct PrivateCluster: Sendable {
    public let directory: String
    public let port: Int


    public var url: String { "postgres://postgres@127.0.0.1:\(port)/taxihub" }

    /// Runs `body` with a fresh cluster, removed afterwards whatever happens.
    public static func with(_ body: (PrivateCluster) async throws -> Void) async throws {
        let cluster = try await start()
        do {
            try await body(cluster)
        } catch {
            await cluster.remove()
            throw error
        }
        await cluster.remove()
    }

    public static func start() async throws -> PrivateCluster {
        // Below Linux's ephemeral range (32768–60999): there, any test's outgoing connection may
        // hold the port already, and the server could not listen on it ("Address already in use").
        let cluster = PrivateCluster(directory: "/tmp/taxihub-outage-\(UUID().uuidString.prefix(8))", port: Int.random(in: 20_000...32_000))
        try await cluster.resume()
        return cluster
    }

    /// Starts the server again on the same data.
    public func resume() async throws {
        try await ChildProcess.run("/bin/bash", [PostgresTestServer.script, "start", directory, String(port)])
    }

    /// Stops the server, keeping its data.
    public func pause() async throws {
        try await ChildProcess.run("/bin/bash", [PostgresTestServer.script, "pause", directory])
    }

    /// Stops the server and removes its data.
    public func remove() async {
        _ = try? await ChildProcess.run("/bin/bash", [PostgresTestServer.script, "stop", directory])
    }
}
