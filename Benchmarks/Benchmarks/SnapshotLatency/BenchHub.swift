import BenchSupport
import Foundation
import HubLauncher
import Web

/// The benchmark's hub: a whole hub (`buildHub`, as `taxi-hub serve` runs it) started inside the
/// benchmark's process by the project's one hub launcher, with the PostgreSQL store and data and
/// media folders of its own.
extension TestHub {
    /// The hub did not become ready in time.
    struct NotReady: Error {}

    static let benchPassword = "bench-Passw0rd!"

    /// Builds and starts the hub, and returns once `/readyz` answers 200.
    static func bench(databaseURL: String) async throws -> TestHub {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxi-hub-latency-bench-\(UUID())")
        var configuration = HubConfiguration()
        configuration.port = 0
        configuration.dataDirectory = directory.appendingPathComponent("data").path
        configuration.mediaDirectory = directory.appendingPathComponent("media").path
        configuration.databaseURL = databaseURL
        configuration.jwtSecret = "latency-bench-secret-that-is-32-bytes-or-more!"
        configuration.bcryptCost = 4
        // Every echo socket belongs to the one rider the benchmark signs up.
        configuration.maxConnectionsPerUser = 10_000
        let hub = try await TestHub.inProcess(configuration, directory: directory, logLevel: .warning)
        for _ in 0..<300 {
            if await HubHTTP.status(of: hub.url("/readyz")) == 200 { return hub }
            try await Task.sleep(for: .milliseconds(100))
        }
        await hub.stopAndRemove()
        throw NotReady()
    }

    /// `http://127.0.0.1:PORT` + `path`.
    func url(_ path: String) -> String {
        "http://127.0.0.1:\(port)\(path)"
    }

    /// Signs up a rider and logs in; returns the access token.
    func signUpAndLogIn(username: String) async throws -> String {
        _ = try await HubHTTP.post(
            url("/api/sign_up/"),
            json: [
                "username": username, "password1": Self.benchPassword, "password2": Self.benchPassword,
                "first_name": "Bench", "last_name": "Rider", "group": "rider",
            ],
            expecting: 201
        )
        let body = try await HubHTTP.post(
            url("/api/log_in/"), json: ["username": username, "password": Self.benchPassword], expecting: 200
        )
        struct Tokens: Decodable { let access: String }
        return try JSONDecoder().decode(Tokens.self, from: body).access
    }

    /// Stops the hub the way `taxi-hub serve` is stopped on SIGTERM — a graceful shutdown: sockets
    /// closed, final snapshot; cancelled if that takes over 30 s — and removes its folders.
    func stopAndRemove() async {
        _ = try? await stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
