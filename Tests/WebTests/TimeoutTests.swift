import Foundation
import HubLauncher
import Testing
import Web
import TestSupport

/// HTTP/1 deadlines over real sockets: a slow request head (the WebSocket handshake too) or
/// body gets `408` and a close, an idle keep-alive connection is closed, and nothing well
/// behaved is cut: keep-alive requests, upgraded WebSockets, slow handlers.
@Suite("HTTP timeouts", MachineLoad.exclusive, .timeLimit(.minutes(4)))
struct TimeoutTests {
    /// Head and body timeouts of 1.5 s, keep-alive of 3 s: short, yet long enough that a
    /// loaded test machine does not stall a well-behaved request past them.
    static func short(_ configuration: inout HubConfiguration) {
        configuration.requestHeadTimeout = .milliseconds(1500)
        configuration.requestBodyTimeout = .milliseconds(1500)
        configuration.keepAliveTimeout = .seconds(3)
    }

    static let plainGet = "GET /api/client/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    /// `taxihub_connection_timeouts_total` by phase, and the 408s among
    /// `taxihub_http_refusals_total` as "408", read on a connection of its own.
    static func timeoutCounts(_ hub: LiveHub) async throws -> [String: Int] {
        let metrics = try await RawHTTPConnection.exchange(port: hub.port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        var counts: [String: Int] = [:]
        for line in metrics.body.split(separator: "\n") where line.hasPrefix("taxihub_connection_timeouts_total{phase=\"") {
            let phase = line.dropFirst("taxihub_connection_timeouts_total{phase=\"".count).prefix { $0 != "\"" }
            counts[String(phase)] = line.split(separator: " ").last.flatMap { Double($0) }.map { Int($0) }
        }
        let refusals = metrics.body.split(separator: "\n").first { $0.hasPrefix(#"taxihub_http_refusals_total{status="408"}"#) }
        counts["408"] = refusals?.split(separator: " ").last.flatMap { Double($0) }.map { Int($0) }
        return counts
    }

    /// The counters once the test client's own connection, opened at the start and never used,
    /// has been closed as idle; what a test expects comes on top.
    static func baseline(_ hub: LiveHub) async throws -> [String: Int] {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let counts = try await timeoutCounts(hub)
            if counts["idle"] == 1 { return counts }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the test client's silent connection was not closed as idle")
        return try await timeoutCounts(hub)
    }

    /// Expects the counters to have grown from `baseline` by `head`, `body` and `idle`, and the
    /// 408 refusals by one for each slow head or body.
    static func expectCounted(_ hub: LiveHub, from baseline: [String: Int], head: Int = 0, body: Int = 0, idle: Int = 0) async throws {
        let counts = try await timeoutCounts(hub)
        #expect(
            counts == [
                "head": baseline["head"]! + head, "body": baseline["body"]! + body, "idle": baseline["idle"]! + idle,
                "408": baseline["408"]! + head + body,
            ]
        )
    }

    /// A signed-up user's access token, over fresh connections (the test client's own one may
    /// have been closed as idle).
    static func accessToken(_ hub: LiveHub, _ username: String) async throws -> String {
        func post(_ path: String, _ json: String) async throws -> RawHTTPConnection.Response {
            try await RawHTTPConnection.exchange(
                port: hub.port,
                "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n"
                    + "Connection: close\r\n\r\n\(json)"
            )
        }
        let signUp = try await post(
            "/api/sign_up/",
            jsonText([
                "username": username, "password1": LiveHub.password, "password2": LiveHub.password, "first_name": "T", "last_name": "U",
                "group": "rider",
            ])
        )
        #expect(signUp.status == 201, "sign-up failed: \(signUp.body)")
        let logIn = try await post("/api/log_in/", jsonText(["username": username, "password": LiveHub.password]))
        return try #require(try parseJSONObject(logIn.body)["access"] as? String)
    }

    static func upgradeRequest(_ token: String) -> String {
        "GET /taxi/?token=\(token) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    }

    /// Expects `408` JSON naming `part` and `connection: close`, then the close, no sooner than
    /// the 1.5 s timeout after `start` and within a bound (loose: a loaded test machine can
    /// starve this client for seconds; the drip would end the head much later still).
    static func expectTimedOut(_ connection: RawHTTPConnection, naming part: String, since start: ContinuousClock.Instant) async throws {
        let response = try #require(try await connection.nextResponse(timeout: .seconds(10)), "no 408 came")
        let elapsed = ContinuousClock.now - start
        #expect(response.status == 408)
        #expect(response.headers["content-type"] == "application/json")
        #expect(response.headers["connection"] == "close")
        let detail = try #require(try parseJSONObject(response.body)["detail"] as? String)
        #expect(detail.contains("request \(part)") && detail.contains("1.5 seconds"), "detail: \(detail)")
        #expect(await connection.closedByHub(within: .seconds(1)))
        #expect(elapsed >= .milliseconds(1450), "408 after \(elapsed)")
        #expect(elapsed < .seconds(10), "408 after \(elapsed)")
    }

    @Test("a request head sent one byte at a time gets 408 and the connection closes")
    func slowLorisHead() async throws {
        try await LiveHub.run(configure: Self.short) { hub in
            let baseline = try await Self.baseline(hub)
            // The head's clock runs from the accept, which comes after this.
            let start = ContinuousClock.now
            let connection = try await RawHTTPConnection.open(port: hub.port)
            let request = "GET /api/client/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-loris\r\nX-Padding: \(String(repeating: "x", count: 200))\r\n\r\n"
            // Every byte comes well within the timeout of the one before: only the whole head counts.
            let sent = await connection.drip(request, every: .milliseconds(100))
            #expect(sent < request.utf8.count, "the head was never completed")
            try await Self.expectTimedOut(connection, naming: "head", since: start)
            try await Self.expectCounted(hub, from: baseline, head: 1)
        }
    }

    @Test("a WebSocket handshake sent slowly gets 408 and no upgrade")
    func slowUpgradeRequest() async throws {
        try await LiveHub.run(configure: Self.short) { hub in
            let baseline = try await Self.baseline(hub)
            let token = try await Self.accessToken(hub, "slow@example.com")
            // The head's clock runs from the accept, which comes after this.
            let start = ContinuousClock.now
            let connection = try await RawHTTPConnection.open(port: hub.port)
            let request = Self.upgradeRequest(token)
            let firstLine = request.components(separatedBy: "\r\n")[0]
            try await connection.write(firstLine)
            let sent = await connection.drip(String(request.dropFirst(firstLine.count)), every: .milliseconds(100))
            #expect(firstLine.utf8.count + sent < request.utf8.count, "the head was never completed")
            try await Self.expectTimedOut(connection, naming: "head", since: start)
            try await Self.expectCounted(hub, from: baseline, head: 1)
        }
    }

    @Test("a body trickled after its head gets 408 and the connection closes")
    func slowBody() async throws {
        try await LiveHub.run(configure: Self.short) { hub in
            let baseline = try await Self.baseline(hub)
            let start = ContinuousClock.now  // before the head is sent, so before the body's clock starts
            let connection = try await RawHTTPConnection.open(
                port: hub.port,
                sending: Array("POST /api/log_in/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n".utf8)
            )
            let sent = await connection.drip(#"{"username": "someone", "password": "#, every: .milliseconds(100))
            #expect(sent < 1000)
            try await Self.expectTimedOut(connection, naming: "body", since: start)
            try await Self.expectCounted(hub, from: baseline, body: 1)
        }
    }

    @Test("an idle keep-alive connection, and one that never sends a byte, are closed without a response")
    func idleConnections() async throws {
        try await LiveHub.run(configure: Self.short) { hub in
            let baseline = try await Self.baseline(hub)
            let asked = ContinuousClock.now  // before the response, so before the idle clock starts
            let keptAlive = try await RawHTTPConnection.open(port: hub.port, sending: Array(Self.plainGet.utf8))
            #expect(try await keptAlive.nextResponse()?.status == 200)
            let answered = ContinuousClock.now
            #expect(await keptAlive.closedByHub(within: .seconds(15)))
            let idle = ContinuousClock.now - answered
            #expect(ContinuousClock.now - asked >= .seconds(3), "closed before the 3 s keep-alive")
            #expect(idle < .seconds(12), "closed after \(idle) idle; keep-alive is 3 s")
            #expect(keptAlive.unread.isEmpty, "nothing is sent to an idle connection: \(keptAlive.unread)")

            let opened = ContinuousClock.now
            let silent = try await RawHTTPConnection.open(port: hub.port)
            #expect(await silent.closedByHub(within: .seconds(15)))
            let waited = ContinuousClock.now - opened
            #expect(waited >= .milliseconds(1450) && waited < .seconds(10), "closed after \(waited); the head timeout is 1.5 s")
            #expect(silent.unread.isEmpty)
            try await Self.expectCounted(hub, from: baseline, idle: 2)
        }
    }

    @Test("keep-alive requests with pauses longer than the head timeout get answers; a slow head on the connection gets 408")
    func keepAliveRequests() async throws {
        try await LiveHub.run(configure: {
            Self.short(&$0)
            $0.keepAliveTimeout = .seconds(6)
        }) { hub in
            let baseline = try await Self.baseline(hub)
            let connection = try await RawHTTPConnection.open(port: hub.port, sending: Array(Self.plainGet.utf8))
            for request in 0..<3 {
                // The head clock starts at the next request's first byte, not at the last response.
                if request > 0 {
                    try await Task.sleep(for: .seconds(2))
                    try await connection.write(Self.plainGet)
                }
                let response = try #require(
                    try await connection.nextResponse(timeout: .seconds(30)), "request \(request) got no answer (closed: \(connection.isClosed))"
                )
                #expect(response.status == 200)
                #expect(try parseJSONObject(response.body)["tile_url"] != nil)
            }
            #expect(!connection.isClosed)
            // A slow head on the kept-alive connection: its clock runs from its first byte.
            try await Task.sleep(for: .seconds(2))
            let start = ContinuousClock.now
            await connection.drip(Self.plainGet, every: .milliseconds(100))
            try await Self.expectTimedOut(connection, naming: "head", since: start)
            try await Self.expectCounted(hub, from: baseline, head: 1)
        }
    }

    @Test("an upgraded WebSocket stays open and quiet well past every HTTP timeout")
    func webSocketOutlivesTimeouts() async throws {
        try await LiveHub.run(configure: Self.short) { hub in
            let baseline = try await Self.baseline(hub)
            let token = try await Self.accessToken(hub, "quiet@example.com")
            let socket = try await TestSocket.connect(port: hub.port, token: token)
            try await Task.sleep(for: .seconds(7))  // past twice every timeout
            let message = #"{"type":"echo.message","data":"still here"}"#
            socket.send(message)
            #expect(try await socket.receive() == message)
            await socket.close()
            try await Self.expectCounted(hub, from: baseline)
        }
    }

    @Test("a frame sent with the handshake, before the 101, is answered after the upgrade")
    func frameWithHandshake() async throws {
        try await LiveHub.run(configure: Self.short) { hub in
            let baseline = try await Self.baseline(hub)
            let token = try await Self.accessToken(hub, "eager@example.com")
            let text = Array(#"{"type":"echo.message","data":"early"}"#.utf8)
            let mask: [UInt8] = [1, 2, 3, 4]
            let frame = [0x81, 0x80 | UInt8(text.count)] + mask + text.enumerated().map { $0.element ^ mask[$0.offset % 4] }
            let connection = try await RawHTTPConnection.open(port: hub.port, sending: Array(Self.upgradeRequest(token).utf8) + frame)
            #expect(try await connection.nextResponse()?.status == 101)
            let deadline = ContinuousClock.now + .seconds(5)
            while !connection.unread.contains("early"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(connection.unread.contains(#""data":"early""#), "the early frame was not echoed: \(connection.unread)")
            try await Task.sleep(for: .seconds(4))
            #expect(!connection.isClosed, "no HTTP timer may close an upgraded socket")
            connection.close()
            try await Self.expectCounted(hub, from: baseline)
        }
    }

    @Test("a handler slower than every timeout is not cut")
    func slowHandler() async throws {
        try await LiveHub.run(configure: {
            $0.requestHeadTimeout = .milliseconds(200)
            $0.requestBodyTimeout = .milliseconds(200)
            $0.keepAliveTimeout = .milliseconds(200)
            // A sign-up and a log-in hash the password, each for about 0.45 s here. (Not more: the
            // hashing threads are shared with the other tests of the process.)
            $0.bcryptCost = 12
        }) { hub in
            let baseline = try await Self.baseline(hub)
            let start = ContinuousClock.now
            _ = try await Self.accessToken(hub, "patient@example.com")
            let elapsed = ContinuousClock.now - start
            try #require(elapsed > .milliseconds(500), "bcrypt took only \(elapsed): the test proves nothing")
            // (Not the idle count: with a 0.2 s keep-alive, a busy test process may close its own
            // finished connections later than that.)
            let counts = try await Self.timeoutCounts(hub)
            #expect(counts["head"] == baseline["head"] && counts["body"] == baseline["body"])
        }
    }
}
