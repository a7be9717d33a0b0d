import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import Web

/// A hub running on an ephemeral port with its own data and media folders, reached over
/// real sockets, plus helpers for the calls most tests start with.
struct LiveHub: Sendable {
    /// Status, headers and body of an HTTP response.
    struct HTTPResult {
        let status: HTTPResponse.Status
        var headers: HTTPFields = [:]
        let body: ByteBuffer
    }

    typealias Transport = @Sendable (String, HTTPRequest.Method, HTTPFields, ByteBuffer?) async throws -> HTTPResult

    let transport: Transport
    let port: Int
    let directory: URL

    static let password = "pAssw0rd!"
    static let secret = "test-secret-that-is-at-least-32-bytes-long"

    init(port: Int, directory: URL, transport: @escaping Transport) {
        self.port = port
        self.directory = directory
        self.transport = transport
    }

    /// A signed-up, logged-in user.
    struct Account {
        let id: Int
        let username: String
        let access: String
        let refresh: String
    }

    /// Runs `body` against a fresh hub; `configure` may change any knob first.
    static func run(
        configure: (inout HubConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (LiveHub) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = Self.configuration(in: directory)
        configure(&configuration)
        var logger = Logger(label: "taxi-hub-test")
        logger.logLevel = ProcessInfo.processInfo.environment["TAXI_HUB_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
        let server = try await buildHub(configuration: configuration, logger: logger)
        do {
            try await server.application.test(.live) { client in
                let hub = LiveHub(port: try #require(client.port), directory: directory) { uri, method, headers, body in
                    let response = try await client.execute(uri: uri, method: method, headers: headers, body: body)
                    return HTTPResult(status: response.status, headers: response.headers, body: response.body)
                }
                try await body(hub)
            }
        } catch {
            try? await server.shutdownEventLoops()
            throw error
        }
        try await server.shutdownEventLoops()
    }

    /// What every test hub starts from: its own folders under `directory`, an ephemeral port,
    /// the test secret, cheap bcrypt, quick snapshots and keep-alive connections kept.
    static func configuration(in directory: URL) -> HubConfiguration {
        var configuration = HubConfiguration()
        configuration.port = 0
        configuration.dataDirectory = directory.appendingPathComponent("data").path
        configuration.mediaDirectory = directory.appendingPathComponent("media").path
        configuration.jwtSecret = secret
        configuration.bcryptCost = 4
        // Tests sign users up side by side; the bound has its own tests (AuthAbuseTests).
        configuration.maxPasswordChecks = 10_000
        // Many hubs share the test process with CPU-bound suites (the simulation), where
        // idle-class threads would wait for minutes; the class has its own test.
        configuration.passwordHashingClass = "normal"
        configuration.snapshotInterval = .milliseconds(100)
        // The test client keeps one connection for the whole test and never reconnects.
        configuration.keepAliveTimeout = .seconds(3600)
        return configuration
    }

    func request(
        _ uri: String, method: HTTPRequest.Method = .get, token: String? = nil, json: Any? = nil,
        headers: HTTPFields = [:], body: ByteBuffer? = nil
    ) async throws -> HTTPResult {
        var headers = headers
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body = body
        if let json {
            headers[.contentType] = "application/json"
            body = ByteBuffer(string: jsonText(json))
        }
        return try await transport(uri, method, headers, body)
    }

    func signUp(_ username: String, group: String = "rider", firstName: String = "Test", lastName: String = "User")
        async throws -> [String: Any]
    {
        let response = try await request(
            "/api/sign_up/", method: .post,
            json: [
                "username": username, "password1": Self.password, "password2": Self.password,
                "first_name": firstName, "last_name": lastName, "group": group,
            ]
        )
        #expect(response.status == .created, "sign-up failed: \(String(buffer: response.body))")
        return try parseJSONObject(String(buffer: response.body))
    }

    func logIn(_ username: String) async throws -> (access: String, refresh: String) {
        let response = try await request("/api/log_in/", method: .post, json: ["username": username, "password": Self.password])
        #expect(response.status == .ok)
        let body = try parseJSONObject(String(buffer: response.body))
        return (try #require(body["access"] as? String), try #require(body["refresh"] as? String))
    }

    func account(_ username: String, group: String = "rider") async throws -> Account {
        let user = try await signUp(username, group: group)
        let tokens = try await logIn(username)
        return Account(id: try #require(user["id"] as? Int), username: username, access: tokens.access, refresh: tokens.refresh)
    }

    func connect(_ account: Account, readDelay: Duration? = nil, readingPaused: Bool = false) async throws -> TestSocket {
        try await TestSocket.connect(port: port, token: account.access, readDelay: readDelay, readingPaused: readingPaused)
    }

    /// Requests a trip as `rider` and returns the trip the rider is sent back.
    func requestTrip(_ rider: Account, on socket: TestSocket, from: String = "123 Main Street", to: String = "456 Piney Road")
        async throws -> [String: Any]
    {
        socket.send(["type": "create.trip", "data": ["pick_up_address": from, "drop_off_address": to, "rider": rider.id]])
        let reply = try await socket.receiveJSON()
        #expect(reply["type"] as? String == "echo.message")
        return try #require(reply["data"] as? [String: Any])
    }

    func trips(_ account: Account) async throws -> [[String: Any]] {
        let response = try await request("/api/trip/", token: account.access)
        #expect(response.status == .ok)
        return try parseJSONArray(String(buffer: response.body))
    }
}
