import Foundation
import HubLauncher
import TestSupport
import Testing

/// `taxi-hub user create --operator`: through a running hub, or straight into the store when
/// none answers (docs/protocol.md §5.1).
@Suite("taxi-hub user create", MachineLoad.shared, .timeLimit(.minutes(4)))
struct UserCommandTests {
    static func directory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-user-\(UUID().uuidString)")
    }

    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["TAXI_HUB_JWT_SECRET"] = LiveHub.secret
        return environment
    }

    static func create(_ username: String, password: String, directory: URL, port: Int, extra: [String] = [])
        async throws -> (status: Int32?, output: String)
    {
        try await ChildProcess.outcome(
            TestHub.executable.path,
            ["user", "create", "--operator", username, "--port", String(port), "--bcrypt-cost", "4",
             "--data-dir", directory.appendingPathComponent("data").path] + extra,
            input: password + "\n", environment: environment
        )
    }

    static func logIn(_ hub: LiveHub, _ username: String) async throws -> [String: Any] {
        let response = try await hub.request("/api/log_in/", method: .post, json: ["username": username, "password": LiveHub.password])
        #expect(response.status == .ok, "\(String(buffer: response.body))")
        let access = try #require(try parseJSONObject(String(buffer: response.body))["access"] as? String)
        return try jwtPayload(access)
    }

    @Test("with no hub running, the operator is written to the store and the next hub loads it")
    func createsInTheStore() async throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let made = try await Self.create("ops", password: LiveHub.password, directory: directory, port: 1)
        #expect(made.status == 0, "\(made.output)")
        #expect(made.output.contains("written to the store"))
        let again = try await Self.create("ops", password: LiveHub.password, directory: directory, port: 1)
        #expect(again.status != 0)
        #expect(again.output.contains("already exists"))
        let process = try await TestHub.process(directory: directory)
        try await process.withHub { hub in
            let claims = try await Self.logIn(hub, "ops")
            #expect(claims["group"] as? String == "operator")
            #expect(claims["id"] as? Int == 1)
            // Sign-ups go on after the operator's id.
            #expect(try await hub.signUp("rider@example.com")["id"] as? Int == 2)
        }
        try await process.stop()
    }

    @Test("with a hub running, the hub makes the operator and it can log in at once")
    func createsThroughTheHub() async throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let process = try await TestHub.process(directory: directory)
        try await process.withHub { hub in
            _ = try await hub.signUp("rider@example.com")
            let made = try await Self.create("ops", password: LiveHub.password, directory: directory, port: process.port)
            #expect(made.status == 0, "\(made.output)")
            #expect(made.output.contains("created by the hub"))
            let claims = try await Self.logIn(hub, "ops")
            #expect(claims["group"] as? String == "operator" && claims["id"] as? Int == 2)
            let wrongSecret = try await ChildProcess.outcome(
                TestHub.executable.path,
                ["user", "create", "--operator", "ops2", "--port", String(process.port), "--data-dir", directory.path],
                input: LiveHub.password + "\n",
                environment: Self.environment.merging(["TAXI_HUB_JWT_SECRET": String(repeating: "x", count: 40)]) { $1 }
            )
            #expect(wrongSecret.status != 0)
            #expect(wrongSecret.output.contains("another JWT secret"))
        }
        try await process.stop()
    }

    @Test("refused: no --operator, a short password, no password")
    func refusals() async throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let noFlag = try await ChildProcess.outcome(
            TestHub.executable.path, ["user", "create", "someone", "--data-dir", directory.path], input: LiveHub.password + "\n",
            environment: Self.environment
        )
        #expect(noFlag.status != 0 && noFlag.output.contains("--operator"))
        let short = try await Self.create("ops", password: "short", directory: directory, port: 1)
        #expect(short.status != 0 && short.output.contains("at least 8 characters"))
        let none = try await ChildProcess.outcome(
            TestHub.executable.path, ["user", "create", "--operator", "ops", "--port", "1", "--data-dir", directory.path],
            environment: Self.environment
        )
        #expect(none.status != 0 && none.output.contains("No password"))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("data/taxihub.sqlite").path))
    }
}
