import Foundation
import HubLauncher
import Testing
import TestSupport

/// The compatible `/taxi/` protocol over real sockets: what the reference's own
/// `test_websocket.py` checks, and the safety rules TaxiHub adds.
@Suite("WebSocket protocol", MachineLoad.shared, .timeLimit(.minutes(4)))
struct SocketProtocolTests {
    @Test("a socket without a token or with a bad token is refused")
    func refusesBadTokens() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let tampered = String(rider.access.dropLast(2)) + (rider.access.hasSuffix("AA") ? "BB" : "AA")
            for token in [nil, "garbage", tampered, rider.refresh] {
                await #expect(throws: TestSocket.Refused.self) { try await TestSocket.connect(port: hub.port, token: token) }
            }
            let response = try await hub.request("/taxi/?token=garbage")
            #expect(response.status == .unauthorized)
        }
    }

    @Test("echo.message comes back unchanged")
    func echo() async throws {
        try await LiveHub.run { hub in
            let socket = try await hub.connect(try await hub.account("rider@example.com"))
            let message = #"{"type":"echo.message","data":"This is a test message."}"#
            socket.send(message)
            #expect(try await socket.receive() == message)
            await socket.close()
        }
    }

    @Test("a connected driver is alerted by create.trip and the rider gets its trip")
    func driverAlertedOnRequest() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let driver = try await hub.account("driver@example.com", group: "driver")
            let driverSocket = try await hub.connect(driver)
            let riderSocket = try await hub.connect(rider)
            let trip = try await hub.requestTrip(rider, on: riderSocket)
            #expect(trip["status"] as? String == "REQUESTED")
            #expect(trip["pick_up_address"] as? String == "123 Main Street")
            #expect(trip["drop_off_address"] as? String == "456 Piney Road")
            #expect((trip["rider"] as? [String: Any])?["username"] as? String == rider.username)
            #expect(trip["driver"] is NSNull)
            let alert = try await driverSocket.receiveJSON()
            #expect(alert["type"] as? String == "echo.message")
            #expect((alert["data"] as? [String: Any])?["id"] as? String == trip["id"] as? String)
            await driverSocket.close()
            await riderSocket.close()
        }
    }

    @Test("the rider gets the driver's update.trip with the nested driver")
    func riderGetsDriverUpdate() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let driver = try await hub.account("driver@example.com", group: "driver")
            let riderSocket = try await hub.connect(rider)
            let trip = try await hub.requestTrip(rider, on: riderSocket)
            let driverSocket = try await hub.connect(driver)
            // What the reference client's driver sends: the whole trip, with the rider's id echoed.
            var update = trip
            update["status"] = "IN_PROGRESS"
            update["driver"] = driver.id
            update["rider"] = rider.id
            driverSocket.send(["type": "update.trip", "data": update])
            for socket in [riderSocket, driverSocket] {
                let message = try await socket.receiveJSON()
                let data = try #require(message["data"] as? [String: Any])
                #expect(data["id"] as? String == trip["id"] as? String)
                #expect(data["status"] as? String == "IN_PROGRESS")
                #expect((data["driver"] as? [String: Any])?["username"] as? String == driver.username)
                #expect((data["rider"] as? [String: Any])?["username"] as? String == rider.username)
            }
            #expect(await driverSocket.staysQuiet(), "the driver gets its update once")
            await riderSocket.close()
            await driverSocket.close()
        }
    }

    @Test("the second driver gets trip_taken and every alerted driver learns the trip is gone")
    func secondDriverLoses() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let first = try await hub.account("first@example.com", group: "driver")
            let second = try await hub.account("second@example.com", group: "driver")
            let firstSocket = try await hub.connect(first)
            let secondSocket = try await hub.connect(second)
            let riderSocket = try await hub.connect(rider)
            let trip = try await hub.requestTrip(rider, on: riderSocket)
            let id = try #require(trip["id"] as? String)
            _ = try await firstSocket.receiveJSON()
            _ = try await secondSocket.receiveJSON()
            firstSocket.send(["type": "update.trip", "data": ["id": id, "status": "STARTED", "driver": first.id]])
            #expect(try await firstSocket.receiveJSON()["type"] as? String == "echo.message")
            let taken = try await secondSocket.receiveJSON()
            #expect(((taken["data"] as? [String: Any])?["status"]) as? String == "STARTED", "alerted driver learns it was taken")
            secondSocket.send(["type": "update.trip", "data": ["id": id, "status": "STARTED", "driver": second.id]])
            let error = try await secondSocket.receiveJSON()
            #expect(error["type"] as? String == "error")
            #expect((error["data"] as? [String: Any])?["code"] as? String == "trip_taken")
            #expect((error["data"] as? [String: Any])?["request_type"] as? String == "update.trip")
            let detail = try await hub.request("/api/trip/\(id)/", token: rider.access)
            let stored = try parseJSONObject(String(buffer: detail.body))
            #expect((stored["driver"] as? [String: Any])?["id"] as? Int == first.id)
            for socket in [firstSocket, secondSocket, riderSocket] { await socket.close() }
        }
    }

    @Test("a reconnecting rider rejoins its trip's group")
    func rejoinOnReconnect() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let driver = try await hub.account("driver@example.com", group: "driver")
            var riderSocket = try await hub.connect(rider)
            let trip = try await hub.requestTrip(rider, on: riderSocket)
            await riderSocket.close()
            riderSocket = try await hub.connect(rider)
            let driverSocket = try await hub.connect(driver)
            driverSocket.send(["type": "update.trip", "data": ["id": trip["id"]!, "status": "STARTED", "driver": driver.id]])
            let update = try await riderSocket.receiveJSON()
            #expect(((update["data"] as? [String: Any])?["status"]) as? String == "STARTED")
            // The driver, reconnecting, is back in the trip's group too.
            _ = try await driverSocket.receiveJSON()
            await driverSocket.close()
            let driverAgain = try await hub.connect(driver)
            driverAgain.send(["type": "update.trip", "data": ["id": trip["id"]!, "status": "IN_PROGRESS"]])
            _ = try await driverAgain.receiveJSON()
            let progress = try await riderSocket.receiveJSON()
            #expect(((progress["data"] as? [String: Any])?["status"]) as? String == "IN_PROGRESS")
            await driverAgain.close()
            await riderSocket.close()
        }
    }

    @Test("a rider and a driver run a trip from request to completion")
    func fullTrip() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let driver = try await hub.account("driver@example.com", group: "driver")
            let riderSocket = try await hub.connect(rider)
            let driverSocket = try await hub.connect(driver)
            let trip = try await hub.requestTrip(rider, on: riderSocket)
            _ = try await driverSocket.receiveJSON()
            for status in ["STARTED", "IN_PROGRESS", "COMPLETED"] {
                driverSocket.send(["type": "update.trip", "data": ["id": trip["id"]!, "status": status, "driver": driver.id]])
                for socket in [driverSocket, riderSocket] {
                    let data = try #require(try await socket.receiveJSON()["data"] as? [String: Any])
                    #expect(data["status"] as? String == status)
                }
            }
            let trips = try await hub.trips(rider)
            #expect(trips.map { $0["status"] as? String } == ["COMPLETED"])
            await riderSocket.close()
            await driverSocket.close()
        }
    }
}
