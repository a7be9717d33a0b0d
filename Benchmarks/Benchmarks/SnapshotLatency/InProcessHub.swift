import BenchSupport
import Foundation
import Logging
import Web

/// A whole hub — `buildHub`, as `taxi-hub serve` runs it — started inside the benchmark's process
/// on a free loopback port, with the PostgreSQL store and data and media folders of its own.
struct InProcessHub: Sendable {
    /// The hub did not become ready in time.
    struct NotReady: Error {}

    let port: Int
    private let server: Task<Void, any Error>
    private let directory: URL

    static let password = "bench-Passw0rd!"

    /// Builds and starts the hub, and returns once `/readyz` answers 200.
    static func start(databaseURL: String) async throws -> InProcessHub {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxi-hub-latency-bench-\(UUID())")
        var configuration = HubConfiguration()
        configuration.port = try FreePort.find()
        configuration.dataDirectory = directory.appendingPathComponent("data").path
        configuration.mediaDirectory = directory.appendingPathComponent("media").path
        configuration.databaseURL = databaseURL
        configuration.jwtSecret = "latency-bench-secret-that-is-32-bytes-or-more!"
        configuration.bcryptCost = 4
        // Every echo socket belongs to the one rider the benchmark signs up.
        configuration.maxConnectionsPerUser = 10_000
        var logger = Logger(label: "taxi-hub")
        logger.logLevel = .warning
        let built = try await buildHub(configuration: configuration, logger: logger)
        let hub = InProcessHub(port: configuration.port, server: Task { try await built.run() }, directory: directory)
        for _ in 0..<300 {
            if await HubHTTP.status(of: hub.url("/readyz")) == 200 { return hub }
            try await Task.sleep(for: .milliseconds(100))
        }
        hub.server.cancel()
        _ = try? await hub.server.value
        try? FileManager.default.removeItem(at: directory)
        throw NotReady()
    }

    /// `http://127.0.0.1:PORT` + `path`.
    func url(_ path: String, scheme: String = "http") -> String {
        "\(scheme)://127.0.0.1:\(port)\(path)"
    }

    /// Signs up a rider and logs in; returns the access token.
    func signUpAndLogIn(username: String) async throws -> String {
        _ = try await HubHTTP.post(
            url("/api/sign_up/"),
            json: [
                "username": username, "password1": Self.password, "password2": Self.password,
                "first_name": "Bench", "last_name": "Rider", "group": "rider",
            ],
            expecting: 201
        )
        let body = try await HubHTTP.post(
            url("/api/log_in/"), json: ["username": username, "password": Self.password], expecting: 200
        )
        struct Tokens: Decodable { let access: String }
        return try JSONDecoder().decode(Tokens.self, from: body).access
    }

    /// Stops the hub the way `taxi-hub serve` is stopped — SIGTERM, which the hub's service group
    /// handles with a graceful shutdown (sockets closed, final snapshot) — and removes its folders.
    /// If it has not stopped after 10 s, its task is cancelled.
    func stop() async {
        kill(getpid(), SIGTERM)
        let server = server
        let watchdog = Task {
            try await Task.sleep(for: .seconds(10))
            server.cancel()
        }
        _ = try? await server.value
        watchdog.cancel()
        try? FileManager.default.removeItem(at: directory)
    }
}
