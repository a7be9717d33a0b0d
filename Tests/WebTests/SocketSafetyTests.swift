import Foundation
import HubLauncher
import Hummingbird
import HummingbirdTesting
import Testing
import TestSupport

/// Bad input, impersonation, illegal moves, slow readers and the connection cap: each gets
/// its answer, the socket stays usable, and no state changes.
@Suite("WebSocket safety rules", MachineLoad.exclusive, .timeLimit(.minutes(4)))
struct SocketSafetyTests {
    /// A bad frame, the error code it must get, and the request type the error names.
    struct BadFrame: CustomTestStringConvertible, Sendable {
        let frame: String
        let code: String
        let requestType: String?
        var testDescription: String { "\(code): \(frame.prefix(60))" }
    }

    static let badFrames: [BadFrame] = [
        BadFrame(frame: "not json", code: "bad_message", requestType: nil),
        BadFrame(frame: "[1, 2]", code: "bad_message", requestType: nil),
        BadFrame(frame: #"{"data": {}}"#, code: "bad_message", requestType: nil),
        BadFrame(frame: #"{"type": 7}"#, code: "bad_message", requestType: nil),
        BadFrame(frame: #"{"type": "launch.rocket", "data": {}}"#, code: "unknown_type", requestType: "launch.rocket"),
        BadFrame(frame: #"{"type": "create.trip", "data": "x"}"#, code: "bad_message", requestType: "create.trip"),
        BadFrame(frame: #"{"type": "create.trip"}"#, code: "bad_message", requestType: "create.trip"),
        BadFrame(
            frame: #"{"type": "create.trip", "data": {"pick_up_address": 5, "drop_off_address": "B"}}"#,
            code: "bad_message", requestType: "create.trip"
        ),
        BadFrame(
            frame: #"{"type": "create.trip", "data": {"pick_up_address": "A", "drop_off_address": "B", "rider": "me"}}"#,
            code: "bad_message", requestType: "create.trip"
        ),
        BadFrame(frame: #"{"type": "create.trip", "data": {"pick_up_address": "A"}}"#, code: "invalid", requestType: "create.trip"),
        BadFrame(
            frame: #"{"type": "create.trip", "data": {"pick_up_address": " ", "drop_off_address": "B"}}"#,
            code: "invalid", requestType: "create.trip"
        ),
        BadFrame(
            frame: #"{"type": "create.trip", "data": {"pick_up_address": "A", "drop_off_address": "B", "rider": 999}}"#,
            code: "forbidden", requestType: "create.trip"
        ),
        BadFrame(frame: #"{"type": "update.trip", "data": {"status": "STARTED"}}"#, code: "invalid", requestType: "update.trip"),
        BadFrame(frame: #"{"type": "update.trip", "data": {"id": "nope"}}"#, code: "invalid", requestType: "update.trip"),
        BadFrame(frame: #"{"type": "update.trip", "data": {"id": 12}}"#, code: "bad_message", requestType: "update.trip"),
        BadFrame(
            frame: #"{"type": "update.trip", "data": {"id": "8d5c0b55-7a43-4a43-9a0e-7c2b1a3b6f10", "status": "STARTED"}}"#,
            code: "not_found", requestType: "update.trip"
        ),
    ]

    @Test("a bad frame gets its error, the socket stays usable and nothing changes", arguments: badFrames)
    func badFrame(_ bad: BadFrame) async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let socket = try await hub.connect(rider)
            socket.send(bad.frame)
            let reply = try await socket.receiveJSON()
            #expect(reply["type"] as? String == "error")
            let data = try #require(reply["data"] as? [String: Any])
            #expect(data["code"] as? String == bad.code)
            #expect((data["message"] as? String)?.isEmpty == false)
            if let type = bad.requestType {
                #expect(data["request_type"] as? String == type)
            } else {
                #expect(data["request_type"] is NSNull)
            }
            let echo = #"{"type":"echo.message","data":"still here"}"#
            socket.send(echo)
            #expect(try await socket.receive() == echo)
            #expect(try await hub.trips(rider).isEmpty)
            await socket.close()
        }
    }

    @Test("a message over the size limit gets too_large and the socket stays open")
    func tooLarge() async throws {
        try await LiveHub.run { $0.maxFrameSize = 1024 } _: { hub in
            let socket = try await hub.connect(try await hub.account("rider@example.com"))
            socket.send(["type": "echo.message", "data": String(repeating: "x", count: 5000)])
            let reply = try await socket.receiveJSON()
            #expect((reply["data"] as? [String: Any])?["code"] as? String == "too_large")
            socket.send(#"{"type":"echo.message","data":1}"#)
            #expect(try await socket.receive() == #"{"type":"echo.message","data":1}"#)
            await socket.close()
        }
    }

    @Test("binary frames get bad_message")
    func binaryFrame() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let socket = try await TestSocket.connect(port: hub.port, token: rider.access, sendBinary: true)
            socket.send("binary please")
            let reply = try await socket.receiveJSON()
            #expect((reply["data"] as? [String: Any])?["code"] as? String == "bad_message")
            await socket.close()
        }
    }

    @Test("nobody can act as someone else or move a trip backwards")
    func impersonationAndBackwardMoves() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let otherRider = try await hub.account("other@example.com")
            let driver = try await hub.account("driver@example.com", group: "driver")
            let thief = try await hub.account("thief@example.com", group: "driver")
            let driverSocket = try await hub.connect(driver)
            let thiefSocket = try await hub.connect(thief)
            let otherSocket = try await hub.connect(otherRider)
            let riderSocket = try await hub.connect(rider)
            let trip = try await hub.requestTrip(rider, on: riderSocket)
            let id = try #require(trip["id"] as? String)
            _ = try await driverSocket.receiveJSON()
            _ = try await thiefSocket.receiveJSON()

            func expectError(_ socket: TestSocket, _ data: [String: Any], _ code: String) async throws {
                socket.send(["type": "update.trip", "data": data])
                let reply = try await socket.receiveJSON()
                #expect((reply["data"] as? [String: Any])?["code"] as? String == code, "\(data) → \(reply)")
            }
            // A driver cannot make someone else the driver, nor claim another rider.
            try await expectError(thiefSocket, ["id": id, "status": "STARTED", "driver": driver.id], "forbidden")
            try await expectError(thiefSocket, ["id": id, "status": "STARTED", "rider": otherRider.id], "forbidden")
            // Riders do not move trips, their own or anyone's.
            try await expectError(riderSocket, ["id": id, "status": "COMPLETED"], "forbidden")
            try await expectError(otherSocket, ["id": id, "status": "STARTED"], "forbidden")
            // Drivers cannot request trips.
            driverSocket.send(["type": "create.trip", "data": ["pick_up_address": "A", "drop_off_address": "B"]])
            #expect((try await driverSocket.receiveJSON()["data"] as? [String: Any])?["code"] as? String == "forbidden")
            // A driver must move a requested trip forward to take it.
            try await expectError(driverSocket, ["id": id, "status": "REQUESTED"], "invalid_transition")
            // Nothing above changed the trip.
            #expect(await riderSocket.staysQuiet())
            let unchanged = try parseJSONObject(String(buffer: try await hub.request("/api/trip/\(id)/", token: rider.access).body))
            #expect(unchanged["status"] as? String == "REQUESTED")
            #expect(unchanged["driver"] is NSNull)

            driverSocket.send(["type": "update.trip", "data": ["id": id, "status": "IN_PROGRESS", "driver": driver.id, "rider": rider.id]])
            _ = try await driverSocket.receiveJSON()
            #expect(((try await thiefSocket.receiveJSON()["data"] as? [String: Any])?["status"]) as? String == "IN_PROGRESS")
            try await expectError(driverSocket, ["id": id, "status": "STARTED"], "invalid_transition")
            try await expectError(driverSocket, ["id": id, "status": "IN_PROGRESS"], "invalid_transition")
            try await expectError(driverSocket, ["id": id, "status": "FLYING"], "invalid")
            try await expectError(thiefSocket, ["id": id, "status": "COMPLETED"], "trip_taken")
            let after = try parseJSONObject(String(buffer: try await hub.request("/api/trip/\(id)/", token: rider.access).body))
            #expect(after["status"] as? String == "IN_PROGRESS")
            #expect((after["driver"] as? [String: Any])?["id"] as? Int == driver.id)
            for socket in [riderSocket, driverSocket, thiefSocket, otherSocket] { await socket.close() }
        }
    }

    @Test("a client that stops reading is closed with 1008 while others keep being served")
    func slowReaderIsDisconnected() async throws {
        try await LiveHub.run {
            $0.outboundQueueLength = 8
            $0.messageRateLimit = 1_000_000
            // Time for the slow client to read the megabytes the kernel buffered before the close
            // frame, however busy the machine: cut earlier, the connection would be reset (the hub
            // has unread input from it) and a reset drops the unread close frame with the rest.
            $0.closeGrace = .seconds(120)
        } _: { hub in
            let slow = try await hub.account("slow@example.com")
            let healthy = try await hub.account("healthy@example.com")
            // The slow client reads nothing until the hub has dropped it; then it reads everything.
            let slowSocket = try await hub.connect(slow, readingPaused: true)
            let healthySocket = try await hub.connect(healthy)
            // Echo replies of 16 KB each pile up: the kernel buffers fill, then the queue overflows.
            let payload = String(repeating: "x", count: 16 * 1024)
            for _ in 0..<1_500 { slowSocket.send(#"{"type":"echo.message","data":"\#(payload)"}"#) }
            let echo = #"{"type":"echo.message","data":"ok"}"#
            healthySocket.send(echo)
            #expect(try await healthySocket.receive(timeout: .seconds(10)) == echo)
            let deadline = ContinuousClock.now + .seconds(120)
            var dropped = false
            while !dropped, ContinuousClock.now < deadline {
                let metrics = try await hub.request("/metrics")
                dropped = String(buffer: metrics.body).contains("taxihub_slow_clients_dropped_total 1")
                if !dropped { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(dropped, "the hub counted the slow client as dropped")
            slowSocket.resumeReading()
            let close = await slowSocket.closedByServer(timeout: .seconds(120))
            #expect(close?.closeCode == .policyViolation)
            #expect(close?.reason?.contains("too slowly") == true)
            healthySocket.send(echo)
            #expect(try await healthySocket.receive() == echo)
            await healthySocket.close()
        }
    }

    @Test("sockets past the connection cap are refused with 503 and the hub keeps serving")
    func connectionCap() async throws {
        try await LiveHub.run { $0.maxConnections = 2 } _: { hub in
            let rider = try await hub.account("rider@example.com")
            let first = try await hub.connect(rider)
            let second = try await hub.connect(rider)
            await #expect(throws: TestSocket.Refused.self) { try await hub.connect(rider) }
            // A handshake on a new connection is answered 503 before any upgrade.
            let refused = try await TestClient.withClient(host: "127.0.0.1", port: hub.port) { client in
                try await client.execute(
                    TestClient.Request(
                        "/taxi/?token=\(rider.access)", method: .get, authority: "localhost",
                        headers: [
                            .connection: "Upgrade", .upgrade: "websocket", .secWebSocketVersion: "13",
                            .secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ==",
                        ]
                    )
                )
            }
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.body.map { String(buffer: $0) }?.contains("connection limit") == true)
            let echo = #"{"type":"echo.message","data":"ok"}"#
            first.send(echo)
            #expect(try await first.receive() == echo)
            await second.close()
            // The freed slot is taken again once the hub has finished the closed session.
            var reconnected: TestSocket?
            for _ in 0..<50 where reconnected == nil {
                reconnected = try? await hub.connect(rider)
                if reconnected == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let third = try #require(reconnected)
            third.send(echo)
            #expect(try await third.receive() == echo)
            await first.close()
            await third.close()
        }
    }
}
