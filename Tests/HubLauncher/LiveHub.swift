import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import Web

/// The tests' helpers for a hub (`TestHub`, in this process or a child process) reached over
/// real sockets: HTTP calls on one keep-alive connection, accounts, WebSockets, trips.
public struct LiveHub: Sendable {
    /// Status, headers and body of an HTTP response.
    public struct HTTPResult: Sendable {
        public let status: HTTPResponse.Status
        public var headers: HTTPFields = [:]
        public let body: ByteBuffer

        public init(status: HTTPResponse.Status, headers: HTTPFields = [:], body: ByteBuffer) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    public typealias Transport = @Sendable (String, HTTPRequest.Method, HTTPFields, ByteBuffer?) async throws -> HTTPResult

    public let transport: Transport
    public let port: Int
    public let directory: URL

    public static let password = "pAssw0rd!"
    public static let secret = TestHub.secret

    public init(port: Int, directory: URL, transport: @escaping Transport) {
        self.port = port
        self.directory = directory
        self.transport = transport
    }

    /// A signed-up, logged-in user.
    public struct Account: Sendable {
        public let id: Int
        public let username: String
        public let access: String
        public let refresh: String

        public init(id: Int, username: String, access: String, refresh: String) {
            self.id = id
            self.username = username
            self.access = access
            self.refresh = refresh
        }
    }

    /// Runs `body` against a fresh hub in this process; `configure` may change any knob first.
    public static func run(
        configure: (inout HubConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (LiveHub) async throws -> Void
    ) async throws {
        try await withFreshFolder(configure) { directory, configuration in
            try await serve(configuration, in: directory, body)
        }
    }

    /// Runs `body` with a fresh folder (removed afterwards) and the test configuration for it,
    /// changed by `configure`.
    private static func withFreshFolder(
        _ configure: (inout HubConfiguration) -> Void, _ body: (URL, HubConfiguration) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = TestHub.configuration(in: directory)
        configure(&configuration)
        try await body(directory, configuration)
    }

    private static func serve(
        _ configuration: HubConfiguration, in directory: URL, _ body: @escaping @Sendable (LiveHub) async throws -> Void
    ) async throws {
        let logLevel = ProcessInfo.processInfo.environment["TAXI_HUB_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
        let hub = try await TestHub.inProcess(configuration, directory: directory, logLevel: logLevel)
        do {
            try await hub.withHub(body)
        } catch {
            _ = try? await hub.stop()
            throw error
        }
        try await hub.stop()
    }

    /// Runs `body` against a fresh hub whose HTTP calls go straight to its router, in Hummingbird's
    /// `.router` test mode: no server, no socket, no port, while the hub's services (the snapshot
    /// loop) run. For tests of REST routes and middleware; a test that opens a WebSocket, or
    /// depends on the connection (keep-alive, time-outs), needs `run`.
    public static func routes(
        configure: (inout HubConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (LiveHub) async throws -> Void
    ) async throws {
        try await withFreshFolder(configure) { directory, configuration in
            try await route(configuration, in: directory, body)
        }
    }

    private static func route(
        _ configuration: HubConfiguration, in directory: URL, _ body: @escaping @Sendable (LiveHub) async throws -> Void
    ) async throws {
        let server = try await buildHub(configuration: configuration, logger: Logger(label: "taxi-hub") { _ in SwiftLogNoOpLogHandler() })
        do {
            try await server.application.test(.router) { client in
                let hub = LiveHub(port: 0, directory: directory) { uri, method, headers, body in
                    let response = try await client.executeRequest(uri: uri, method: method, headers: headers, body: body)
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

    /// What every test hub starts from (`TestHub.configuration(in:)`).
    public static func configuration(in directory: URL) -> HubConfiguration {
        TestHub.configuration(in: directory)
    }

    public func request(
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

    public func signUp(_ username: String, group: String = "rider", firstName: String = "Test", lastName: String = "User")
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

    public func logIn(_ username: String) async throws -> (access: String, refresh: String) {
        let response = try await request("/api/log_in/", method: .post, json: ["username": username, "password": Self.password])
        #expect(response.status == .ok)
        let body = try parseJSONObject(String(buffer: response.body))
        return (try #require(body["access"] as? String), try #require(body["refresh"] as? String))
    }

    public func account(_ username: String, group: String = "rider") async throws -> Account {
        let user = try await signUp(username, group: group)
        let tokens = try await logIn(username)
        return Account(id: try #require(user["id"] as? Int), username: username, access: tokens.access, refresh: tokens.refresh)
    }

    public func connect(_ account: Account, readDelay: Duration? = nil, readingPaused: Bool = false) async throws -> TestSocket {
        try await TestSocket.connect(port: port, token: account.access, readDelay: readDelay, readingPaused: readingPaused)
    }

    /// Requests a trip as `rider` and returns the trip the rider is sent back.
    public func requestTrip(_ rider: Account, on socket: TestSocket, from: String = "123 Main Street", to: String = "456 Piney Road")
        async throws -> [String: Any]
    {
        socket.send(["type": "create.trip", "data": ["pick_up_address": from, "drop_off_address": to, "rider": rider.id]])
        let reply = try await socket.receiveJSON()
        #expect(reply["type"] as? String == "echo.message")
        return try #require(reply["data"] as? [String: Any])
    }

    public func trips(_ account: Account) async throws -> [[String: Any]] {
        let response = try await request("/api/trip/", token: account.access)
        #expect(response.status == .ok)
        return try parseJSONArray(String(buffer: response.body))
    }
}

extension TestHub {
    /// Runs `body` with helpers talking to this hub over real sockets; the HTTP calls share one
    /// keep-alive connection, opened at the start (TimeoutTests count it closed as idle).
    public func withHub<Value: Sendable>(_ body: @escaping @Sendable (LiveHub) async throws -> Value) async throws -> Value {
        let (port, directory) = (port, directory)
        return try await TestClient.withClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(20))) { client in
            let hub = LiveHub(port: port, directory: directory) { uri, method, headers, body in
                var headers = headers
                headers[.connection] = "keep-alive"
                let response = try await client.execute(
                    TestClient.Request(uri, method: method, authority: "localhost", headers: headers, body: body)
                )
                return LiveHub.HTTPResult(status: response.status, headers: response.headers, body: response.body ?? ByteBuffer())
            }
            return try await body(hub)
        }
    }
}
