import Foundation
import HubLauncher
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hub
import Hummingbird
import NIOPosix
import Testing

@testable import Web
import TestSupport

/// Refused credentials: throttled log-ins, short passwords, and every kind of bad token on every
/// authenticated route and on the socket.
@Suite("Auth abuse", MachineLoad.shared, .timeLimit(.minutes(4)))
struct AuthAbuseTests {
    static func logIn(_ hub: LiveHub, _ username: String, _ password: String) async throws -> LiveHub.HTTPResult {
        try await hub.request("/api/log_in/", method: .post, json: ["username": username, "password": password])
    }

    /// A log-in over a fresh URLSession connection (the test client's connection runs one request at a time).
    static func logInOnOwnConnection(port: Int, _ username: String, _ password: String) async throws -> LiveHub.HTTPResult {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/api/log_in/")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(jsonText(["username": username, "password": password]).utf8)
        let session = URLSession(configuration: .ephemeral)
        defer { session.finishTasksAndInvalidate() }
        let (body, response) = try await session.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        var headers = HTTPFields()
        if let retryAfter = http.value(forHTTPHeaderField: "Retry-After") { headers[.retryAfter] = retryAfter }
        return LiveHub.HTTPResult(status: .init(code: http.statusCode), headers: headers, body: ByteBuffer(data: body))
    }

    @Test("failed log-ins of one username are throttled with 429 and Retry-After; other usernames go on")
    func throttlesPerUsername() async throws {
        try await LiveHub.run { $0.loginRatePerUsername = 3 } _: { hub in
            _ = try await hub.signUp("victim@example.com")
            _ = try await hub.signUp("other@example.com")
            for _ in 0..<3 {
                #expect(try await Self.logIn(hub, "victim@example.com", "wrong-guess").status == .unauthorized)
            }
            // Even the right password waits now: a guesser cannot tell.
            let refused = try await Self.logIn(hub, "victim@example.com", LiveHub.password)
            #expect(refused.status == .tooManyRequests)
            let retryAfter = try #require(refused.headers[.retryAfter].flatMap { Int($0) })
            #expect((1...20).contains(retryAfter))
            let body = try parseJSONObject(String(buffer: refused.body))
            #expect(body["code"] as? String == "throttled")
            #expect((body["detail"] as? String)?.contains("try again in \(retryAfter) seconds") == true)
            #expect(try await Self.logIn(hub, "other@example.com", LiveHub.password).status == .ok)
            let metrics = String(buffer: try await hub.request("/metrics").body)
            #expect(metrics.contains(#"taxihub_logins_throttled_total{scope="username"} 1"#))
        }
    }

    @Test("log-in attempts from one address are throttled, right passwords included")
    func throttlesPerAddress() async throws {
        try await LiveHub.run { $0.loginRatePerAddress = 4 } _: { hub in
            _ = try await hub.signUp("a@example.com")
            for _ in 0..<4 {
                #expect(try await Self.logIn(hub, "a@example.com", LiveHub.password).status == .ok)
            }
            let refused = try await Self.logIn(hub, "a@example.com", LiveHub.password)
            #expect(refused.status == .tooManyRequests)
            // A quarter of a minute refills one of 4; less if the attempts took a while.
            #expect(refused.headers[.retryAfter].flatMap { Int($0) }.map { (1...15).contains($0) } == true)
            let metrics = String(buffer: try await hub.request("/metrics").body)
            #expect(metrics.contains(#"taxihub_logins_throttled_total{scope="address"} 1"#))
        }
    }

    @Test("buckets refill at their rate, and full ones are forgotten")
    func throttleRefillsAndForgets() {
        let start = ContinuousClock.now
        let throttle = LoginThrottle(perAddress: 2, perUsername: 60, now: start)
        #expect(throttle.admit(address: "10.0.0.1", username: "u", now: start) == nil)
        #expect(throttle.admit(address: "10.0.0.1", username: "u", now: start) == nil)
        #expect(throttle.admit(address: "10.0.0.1", username: "u", now: start) == .init(scope: .address, retryAfter: 30))
        #expect(throttle.admit(address: "10.0.0.2", username: "u", now: start) == nil)
        #expect(throttle.admit(address: "10.0.0.1", username: "u", now: start + .seconds(31)) == nil)
        #expect(throttle.trackedCount == 3)
        // A minute after the last attempt every bucket is full again and is dropped.
        _ = throttle.admit(address: nil, username: "v", now: start + .seconds(200))
        #expect(throttle.trackedCount == 1)
    }

    @Test("a token bucket allows its burst, then one per 1/rate seconds, and says how long to wait")
    func tokenBucket() {
        let start = ContinuousClock.now
        var bucket = RateLimiter(perSecond: 2, burst: 3, now: start)
        let burst = (0..<4).map { _ in bucket.allow(now: start) }
        #expect(burst == [true, true, true, false])
        let wait = bucket.secondsUntilAllowed(now: start)
        #expect(wait == 0.5)
        let afterWait = bucket.allow(now: start + .milliseconds(500))
        #expect(afterWait)
        #expect(!bucket.isFull(now: start + .milliseconds(1499)))
        #expect(bucket.isFull(now: start + .milliseconds(2000)))
        let later = bucket.secondsUntilAllowed(now: start + .seconds(10))
        #expect(later == 0)
    }

    @Test("sign-up refuses passwords shorter than 8 characters")
    func shortPasswords() async throws {
        try await LiveHub.run { hub in
            let response = try await hub.request(
                "/api/sign_up/", method: .post,
                json: ["username": "s@example.com", "password1": "1234567", "password2": "1234567", "group": "rider"]
            )
            #expect(response.status == .badRequest)
            #expect(
                try parseJSONObject(String(buffer: response.body))["password1"] as? [String]
                    == ["This password is too short. It must contain at least 8 characters."]
            )
            #expect(try await Self.logIn(hub, "s@example.com", "1234567").status == .unauthorized)
        }
    }

    /// The payload of `token` with `change` applied, re-encoded, keeping its header and signature.
    static func tamper(_ token: String, _ change: (inout [String: Any]) -> Void) throws -> String {
        let parts = token.split(separator: ".").map(String.init)
        var payload = try jwtPayload(token)
        change(&payload)
        return [parts[0], base64URL(try JSONSerialization.data(withJSONObject: payload)), parts[2]].joined(separator: ".")
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @Test("expired, tampered, alg none, wrong-secret and refresh tokens are refused on every route and the socket")
    func badTokens() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let victim = try await hub.account("victim@example.com")
            let socket = try await hub.connect(victim)
            let tripID = try #require(try await hub.requestTrip(victim, on: socket)["id"] as? String)
            await socket.close()
            let user = User(
                id: rider.id, username: rider.username, firstName: "Test", lastName: "User", group: .rider, photo: nil,
                passwordHash: ""
            )
            let own = try await TokenService(secret: LiveHub.secret, accessLifetime: .seconds(3600), refreshLifetime: .seconds(3600))
            let stranger = try await TokenService(
                secret: String(repeating: "s", count: 40), accessLifetime: .seconds(3600), refreshLifetime: .seconds(3600)
            )
            let unsignedPayload = try JSONSerialization.data(withJSONObject: try jwtPayload(rider.access))
            let tokens: [(String, String)] = [
                ("expired", try await own.accessToken(for: user, now: Date().addingTimeInterval(-7200))),
                ("tampered: another user's id", try Self.tamper(rider.access) { $0["id"] = victim.id }),
                ("tampered: later expiry", try Self.tamper(rider.access) { $0["exp"] = Int(Date().timeIntervalSince1970) + 999_999 }),
                ("alg none", Self.base64URL(Data(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + Self.base64URL(unsignedPayload) + "."),
                ("wrong secret", try await stranger.accessToken(for: user)),
                ("refresh as access", rider.refresh),
                ("garbage", "not.a.token"),
            ]
            for (kind, token) in tokens {
                for route in ["/api/trip/", "/api/trip/\(tripID)/", "/api/trip/\(tripID)/track/"] {
                    let response = try await hub.request(route, token: token)
                    #expect(response.status == .unauthorized, "\(kind) on \(route)")
                    #expect(String(buffer: response.body).contains("token_not_valid"), "\(kind) on \(route)")
                }
                let operators = try await hub.request(
                    "/api/operators/", method: .post, token: token, json: ["username": "x", "password": LiveHub.password]
                )
                #expect(operators.status == .forbidden, "\(kind) on /api/operators/")
                await #expect(throws: TestSocket.Refused.self, "\(kind) on the socket") {
                    try await TestSocket.connect(port: hub.port, token: token)
                }
            }
            // A refresh token is refused where an access token is wanted, and the reverse.
            let refresh = try await hub.request("/api/token/refresh/", method: .post, json: ["refresh": rider.access])
            #expect(refresh.status == .unauthorized)
        }
    }

    @Test("log-ins past maxPasswordChecks get 503 busy with Retry-After at once; the others log in")
    func passwordChecksAreBounded() async throws {
        try await LiveHub.run {
            $0.bcryptCost = 10  // tens of milliseconds a hash: the checks overlap
            $0.maxPasswordChecks = 1
            $0.loginRatePerAddress = 1_000
        } _: { hub in
            _ = try await hub.signUp("busy@example.com")
            let statuses = try await withThrowingTaskGroup(of: LiveHub.HTTPResult.self) { group in
                // Each on a connection of its own, all at once.
                for _ in 0..<8 { group.addTask { try await Self.logInOnOwnConnection(port: hub.port, "busy@example.com", LiveHub.password) } }
                return try await group.reduce(into: [LiveHub.HTTPResult]()) { $0.append($1) }
            }
            let busy = statuses.filter { $0.status == .serviceUnavailable }
            #expect(statuses.allSatisfy { $0.status == .ok || $0.status == .serviceUnavailable }, "\(statuses.map(\.status))")
            #expect(statuses.contains { $0.status == .ok })
            #expect(!busy.isEmpty)
            for refused in busy {
                #expect(refused.headers[.retryAfter] == "1")
                #expect(try parseJSONObject(String(buffer: refused.body))["code"] as? String == "busy")
            }
            let metrics = String(buffer: try await hub.request("/metrics").body)
            #expect(metrics.contains(#"taxihub_http_refusals_total{status="503"} \#(busy.count)"#))
        }
    }

    @Test("a hasher refuses at once with Busy while maxWaiting hashes are queued or running, and takes work again after")
    func hasherBound() async throws {
        let hasher = PasswordHasher(cost: 4, maxWaiting: 1)
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let release = DispatchSemaphore(value: 0)
        let holder = Task {
            try await hasher.run {
                startedContinuation.yield()
                release.wait()
            }
        }
        var iterator = started.makeAsyncIterator()
        await iterator.next()
        await #expect(throws: PasswordHasher.Busy.self) { _ = try await hasher.hash("waits behind the holder") }
        release.signal()
        try await holder.value
        #expect(try await hasher.verify("now", against: try await hasher.hash("now")))
    }

    @Test("bcrypt runs on threads of its own in the SCHED_IDLE class, never on an event loop")
    func hashingThreadsYield() async throws {
        let hasher = PasswordHasher(cost: 4)
        let (policy, onEventLoop) = try await hasher.run {
            (sched_getscheduler(0), MultiThreadedEventLoopGroup.currentEventLoop != nil)
        }
        #expect(policy == PasswordHasher.schedIdle)
        // The test's own thread stays in the normal class, and so do a `normal` hasher's threads.
        #expect(sched_getscheduler(0) == 0)
        let normal = try await PasswordHasher(cost: 4, threadClass: .normal).run { sched_getscheduler(0) }
        #expect(normal == 0)
        #expect(!onEventLoop)
        let hash = try await hasher.hash("correct horse")
        #expect(try await hasher.verify("correct horse", against: hash))
        #expect(try await !hasher.verify("wrong horse", against: hash))
    }
}

/// One account cannot hold the hub's sockets: past `maxConnectionsPerUser` its handshakes get 429.
@Suite("Connections per user", MachineLoad.shared, .timeLimit(.minutes(4)))
struct ConnectionsPerUserTests {
    @Test("one user may hold at most maxConnectionsPerUser sockets; the next gets 429, others are not affected")
    func perUserCap() async throws {
        try await LiveHub.run { $0.maxConnectionsPerUser = 2 } _: { hub in
            let rider = try await hub.account("rider@example.com")
            let other = try await hub.account("other@example.com")
            let first = try await hub.connect(rider)
            let second = try await hub.connect(rider)
            await #expect(throws: TestSocket.Refused.self) { try await hub.connect(rider) }
            let plain = try await hub.request("/taxi/?token=\(rider.access)")
            #expect(plain.status == .tooManyRequests)
            #expect(try parseJSONObject(String(buffer: plain.body))["code"] as? String == "too_many_connections")
            let otherSocket = try await hub.connect(other)
            // Closing one frees its slot for the same user.
            await first.close()
            var third: TestSocket?
            let deadline = ContinuousClock.now + .seconds(10)
            while third == nil, ContinuousClock.now < deadline {
                third = try? await hub.connect(rider)
                if third == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let reopened = try #require(third, "the closed socket's slot never came back")
            reopened.send(#"{"type":"echo.message","data":1}"#)
            #expect(try await reopened.receive() == #"{"type":"echo.message","data":1}"#)
            for socket in [second, otherSocket, reopened] { await socket.close() }
        }
    }
}

/// Every kind of message counts against a socket's rate, not only locations.
@Suite("Message rate", MachineLoad.shared, .timeLimit(.minutes(2)))
struct MessageRateTests {
    @Test("past messageRateLimit every kind of message gets rate_limited with its type, and the socket recovers")
    func floodOfEveryKind() async throws {
        try await LiveHub.run { $0.messageRateLimit = 5 } _: { hub in
            let rider = try await hub.account("rider@example.com")
            let socket = try await hub.connect(rider)
            let flood: [String] = [
                #"{"type":"echo.message","data":1}"#, "not json",
                #"{"type":"create.trip","data":{"pick_up_address":"A","drop_off_address":"B"}}"#,
                #"{"type":"resume","data":{"trips":{}}}"#, #"{"type":"cancel.trip","data":{"id":"8d5c0b55-7a43-4a43-9a0e-7c2b1a3b6f10"}}"#,
            ]
            for text in flood + flood { socket.send(text) }
            var replies: [[String: Any]] = []
            while let reply = try? await socket.receiveJSON(timeout: .milliseconds(500)) { replies.append(reply) }
            let limited = replies.compactMap { $0["data"] as? [String: Any] }.filter { $0["code"] as? String == "rate_limited" }
            // The burst of 5 is carried out (echo, bad_message, the trip, nothing for resume, not_found); the rest is refused.
            #expect(limited.count == 5, "\(replies)")
            #expect(Set(limited.map { ($0["request_type"] as? String) ?? "null" }) == ["echo.message", "null", "create.trip", "resume", "cancel.trip"])
            #expect(try await hub.trips(rider).count == 1, "only the trip inside the burst was created")
            try await Task.sleep(for: .seconds(1.2))
            socket.send(#"{"type":"echo.message","data":2}"#)
            #expect(try await socket.receive() == #"{"type":"echo.message","data":2}"#)
            await socket.close()
        }
    }
}
