import Foundation
import HubLauncher
import Hummingbird
import Logging
import Testing
import Web
import TestSupport

/// Operators (docs/protocol.md §5.1): made only with an admin token, read-only, and fed the live
/// map and stats over their socket.
@Suite("Operators", MachineLoad.shared, .timeLimit(.minutes(4)))
struct OperatorTests {
    static let downtown = (lat: 40.7128, lng: -74.0060)

    static func adminToken() async throws -> String {
        var configuration = HubConfiguration()
        configuration.jwtSecret = LiveHub.secret
        return try await OperatorAccounts.adminToken(configuration: configuration, logger: Logger(label: "test"))
    }

    /// Makes an operator through `POST /api/operators/` and logs it in.
    static func makeOperator(_ hub: LiveHub, _ username: String = "ops@example.com") async throws -> LiveHub.Account {
        let created = try await hub.request(
            "/api/operators/", method: .post, token: try await Self.adminToken(),
            json: ["username": username, "password": LiveHub.password, "first_name": "Olga"]
        )
        #expect(created.status == .created, "\(String(buffer: created.body))")
        let user = try parseJSONObject(String(buffer: created.body))
        #expect(user["group"] as? String == "operator")
        let tokens = try await hub.logIn(username)
        return LiveHub.Account(id: try #require(user["id"] as? Int), username: username, access: tokens.access, refresh: tokens.refresh)
    }

    struct NoMatchingFrame: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads frames until one of `type` arrives whose data passes `accept`.
    static func frame(
        _ type: String, on socket: TestSocket, where accept: ([String: Any]) -> Bool = { _ in true }
    ) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let frame = try await socket.receiveJSON()
            if frame["type"] as? String == type, let data = frame["data"] as? [String: Any], accept(data) { return data }
        }
        throw NoMatchingFrame(description: "no \(type) frame matched in 10 s")
    }

    @Test("sign-up refuses the operator group")
    func signUpRefusesOperators() async throws {
        try await LiveHub.run { hub in
            let response = try await hub.request(
                "/api/sign_up/", method: .post,
                json: ["username": "o", "password1": LiveHub.password, "password2": LiveHub.password, "group": "operator"]
            )
            #expect(response.status == .badRequest)
            #expect(try parseJSONObject(String(buffer: response.body))["group"] as? [String] == [#""operator" is not a valid choice."#])
        }
    }

    @Test("only an admin token creates operators; the rules of sign-up and a minimum password length apply")
    func onlyAdminTokensCreateOperators() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let body: [String: Any] = ["username": "ops", "password": LiveHub.password]
            #expect(try await hub.request("/api/operators/", method: .post, json: body).status == .unauthorized)
            for token in [rider.access, rider.refresh, "not-a-token"] {
                let refused = try await hub.request("/api/operators/", method: .post, token: token, json: body)
                #expect(refused.status == .forbidden)
                #expect(String(buffer: refused.body).contains("Only the command line"))
            }
            let admin = try await Self.adminToken()
            let short = try await hub.request(
                "/api/operators/", method: .post, token: admin, json: ["username": "ops", "password": "short"]
            )
            #expect(short.status == .badRequest)
            #expect(try parseJSONObject(String(buffer: short.body))["password"] != nil)
            let badName = try await hub.request(
                "/api/operators/", method: .post, token: admin, json: ["username": "no spaces", "password": LiveHub.password]
            )
            #expect(badName.status == .badRequest)
            let taken = try await hub.request(
                "/api/operators/", method: .post, token: admin, json: ["username": "rider@example.com", "password": LiveHub.password]
            )
            #expect(try parseJSONObject(String(buffer: taken.body))["username"] as? [String] == ["A user with that username already exists."])
            let operatorAccount = try await Self.makeOperator(hub, "ops")
            #expect(try jwtPayload(operatorAccount.access)["group"] as? String == "operator")
            // An operator's own token cannot make more operators.
            #expect(try await hub.request("/api/operators/", method: .post, token: operatorAccount.access, json: body).status == .forbidden)
        }
    }

    @Test("an operator is read-only on the socket: every trip message and location is refused")
    func operatorsAreReadOnly() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let riderSocket = try await hub.connect(rider)
            let tripID = try #require(try await hub.requestTrip(rider, on: riderSocket)["id"] as? String)
            let watcher = try await Self.makeOperator(hub)
            let socket = try await hub.connect(watcher)
            let messages: [[String: Any]] = [
                ["type": "create.trip", "data": ["pick_up_address": "A", "drop_off_address": "B"]],
                ["type": "update.trip", "data": ["id": tripID, "status": "STARTED"]],
                ["type": "cancel.trip", "data": ["id": tripID]],
                ["type": "update.location", "data": ["lat": 1, "lng": 2]],
                ["type": "resume", "data": ["trips": [tripID: 0]]],
            ]
            for message in messages {
                socket.send(message)
                let error = try await Self.frame("error", on: socket)
                #expect(error["code"] as? String == "forbidden", "\(message["type"]!): \(error)")
            }
            socket.send(#"{"type":"echo.message","data":{"hello":1}}"#)
            #expect(try await Self.frame("echo.message", on: socket)["hello"] as? Int == 1)
            let trips = try await hub.trips(rider)
            #expect(trips.first?["status"] as? String == "REQUESTED" && trips.first?["driver"] is NSNull)
            await socket.close()
            await riderSocket.close()
        }
    }

    @Test("operators get every driver's position in batches and the trips, counts and health once a second")
    func operatorFeed() async throws {
        try await LiveHub.run { $0.operatorFeedInterval = .milliseconds(100) } _: { hub in
            let rider = try await hub.account("rider@example.com")
            let driver = try await hub.account("driver@example.com", group: "driver")
            let idle = try await hub.account("idle@example.com", group: "driver")
            let driverSocket = try await hub.connect(driver)
            let idleSocket = try await hub.connect(idle)
            driverSocket.send(["type": "update.location", "data": ["lat": Self.downtown.lat, "lng": Self.downtown.lng]])
            idleSocket.send(["type": "update.location", "data": ["lat": 40.75, "lng": -73.99]])
            let riderSocket = try await hub.connect(rider)
            let watcher = try await Self.makeOperator(hub)
            let socket = try await hub.connect(watcher)

            let positions = try await Self.frame("operator.drivers", on: socket) { ($0["drivers"] as? [[Any]])?.count == 2 }
            let rows = try #require(positions["drivers"] as? [[Double]])
            #expect(Set(rows.map { $0[0] }) == [Double(driver.id), Double(idle.id)])
            #expect(rows.contains { $0 == [Double(driver.id), Self.downtown.lat, Self.downtown.lng, 0] })

            let trip = try await hub.requestTrip(rider, on: riderSocket)
            let tripID = try #require(trip["id"] as? String)
            let stats = try await Self.frame("operator.stats", on: socket) { data in
                ((data["recent_trips"] as? [[String: Any]]) ?? []).contains { $0["id"] as? String == tripID }
            }
            #expect((stats["trips"] as? [String: Int])?["REQUESTED"] == 1)
            #expect(stats["drivers_online"] as? Int == 2)
            #expect(stats["connections"] as? Int == 4)
            #expect((stats["messages_in_per_second"] as? Double).map { $0 >= 0 } == true)
            let store = try #require(stats["store"] as? [String: Any])
            #expect(store["kind"] as? String == "sqlite" && store["state"] as? String == "ready")
            #expect(store["last_error"] is NSNull)

            // The operator lists every live trip and reads its track; the rider gets no operator frames.
            let listed = try parseJSONArray(String(buffer: try await hub.request("/api/trip/", token: watcher.access).body))
            #expect(listed.map { $0["id"] as? String } == [tripID])
            #expect(try await hub.request("/api/trip/\(tripID)/track/", token: watcher.access).status == .ok)

            driverSocket.send(["type": "update.trip", "data": ["id": tripID, "status": "STARTED", "driver": driver.id]])
            _ = try await Self.frame("operator.drivers", on: socket) { data in
                ((data["drivers"] as? [[Double]]) ?? []).contains { $0[0] == Double(driver.id) && $0[3] == 1 }
            }
            driverSocket.send(["type": "update.trip", "data": ["id": tripID, "status": "COMPLETED"]])
            // Once stored, the trip leaves memory; the operator still counts it and lists it as finished.
            let finished = try await Self.frame("operator.stats", on: socket) { data in
                (data["trips"] as? [String: Int])?["COMPLETED"] == 1
                    && ((data["recent_trips"] as? [[String: Any]]) ?? []).contains {
                        $0["id"] as? String == tripID && $0["status"] as? String == "COMPLETED"
                    }
            }
            #expect((finished["trips"] as? [String: Int])?["REQUESTED"] == 0)
            while let frame = try? await riderSocket.receiveJSON(timeout: .milliseconds(400)) {
                #expect((frame["type"] as? String)?.hasPrefix("operator.") == false)
            }
            for socket in [socket, riderSocket, driverSocket, idleSocket] { await socket.close() }
        }
    }
}
