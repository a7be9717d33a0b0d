import Foundation
import HubLauncher
import Testing
import TestSupport

/// Dispatch over real sockets (docs/protocol.md §3.3, §3.6, §3.7): `decline.trip` and
/// `update.availability` with their bad input, offers' terms, withdrawals, "no driver found",
/// the pick-up radius, and the operators' supply and demand.
@Suite("Dispatch over sockets", MachineLoad.shared, .timeLimit(.minutes(4)))
struct DispatchSocketTests {
    static let pickUp = (lat: 52.52, lng: 13.405)

    static func location(metresNorth metres: Double) -> [String: Any] {
        ["type": "update.location", "data": ["lat": pickUp.lat + metres / 111_195, "lng": pickUp.lng, "speed": 0]]
    }

    static func createTrip(withPickUp: Bool = true) -> [String: Any] {
        var data: [String: Any] = ["pick_up_address": "A", "drop_off_address": "B"]
        if withPickUp { data["pick_up_location"] = ["lat": pickUp.lat, "lng": pickUp.lng] }
        return ["type": "create.trip", "data": data]
    }

    /// Reads frames until one of `type` arrives whose data passes `accept`; returns the whole frame.
    static func next(_ type: String, on socket: TestSocket, where accept: ([String: Any]) -> Bool = { _ in true }) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let frame = try await socket.receiveJSON()
            if frame["type"] as? String == type, let data = frame["data"] as? [String: Any], accept(data) { return frame }
        }
        throw OperatorTests.NoMatchingFrame(description: "no \(type) frame matched in 10 s")
    }

    /// A sent message's error frame: its code and request type.
    static func error(after message: Any, on socket: TestSocket) async throws -> (code: String?, requestType: String?) {
        if let text = message as? String { socket.send(text) } else { socket.send(try #require(message as? [String: Any])) }
        let frame = try await socket.receiveJSON()
        #expect(frame["type"] as? String == "error", "\(frame)")
        let data = frame["data"] as? [String: Any]
        return (data?["code"] as? String, data?["request_type"] as? String)
    }

    /// A driver that sent a location and had it handled (an echo round trip proves it).
    static func placedDriver(_ hub: LiveHub, _ name: String, metres: Double) async throws -> (LiveHub.Account, TestSocket) {
        let account = try await hub.account(name, group: "driver")
        let socket = try await hub.connect(account)
        socket.send(location(metresNorth: metres))
        socket.send(#"{"type":"echo.message","data":"sync"}"#)
        _ = try await socket.receive()
        return (account, socket)
    }

    @Test("decline.trip and update.availability: bad input gets a clear error frame and changes nothing")
    func badInput() async throws {
        try await LiveHub.run { hub in
            let (_, driver) = try await Self.placedDriver(hub, "driver@example.com", metres: 200)
            let rider = try await hub.account("rider@example.com")
            let riderSocket = try await hub.connect(rider)
            riderSocket.send(Self.createTrip())
            let trip = try #require((try await riderSocket.receiveJSON()["data"] as? [String: Any])?["id"] as? String)
            let offer = try await Self.next("echo.message", on: driver)
            #expect((offer["data"] as? [String: Any])?["id"] as? String == trip)

            let cases: [(Any, String)] = [
                (#"{"type":"decline.trip"}"#, "bad_message"),
                (#"{"type":"decline.trip","data":"x"}"#, "bad_message"),
                (#"{"type":"decline.trip","data":{}}"#, "invalid"),
                (#"{"type":"decline.trip","data":{"id":null}}"#, "invalid"),
                (#"{"type":"decline.trip","data":{"id":7}}"#, "bad_message"),
                (#"{"type":"decline.trip","data":{"id":"not-a-uuid"}}"#, "invalid"),
                (["type": "decline.trip", "data": ["id": UUID().uuidString]], "not_found"),
                (#"{"type":"update.availability"}"#, "bad_message"),
                (#"{"type":"update.availability","data":{}}"#, "invalid"),
                (#"{"type":"update.availability","data":{"online":null}}"#, "invalid"),
                (#"{"type":"update.availability","data":{"online":"no"}}"#, "bad_message"),
                (#"{"type":"update.availability","data":{"online":0}}"#, "bad_message"),
            ]
            for (message, code) in cases {
                let error = try await Self.error(after: message, on: driver)
                #expect(error.code == code, "\(message)")
                #expect(error.requestType == ((message as? String)?.contains("availability") == true ? "update.availability" : "decline.trip"))
            }
            // A rider declines nothing and goes neither online nor offline.
            #expect(try await Self.error(after: ["type": "decline.trip", "data": ["id": trip]], on: riderSocket).code == "forbidden")
            #expect(try await Self.error(after: ["type": "update.availability", "data": ["online": false]], on: riderSocket).code == "forbidden")
            // Nothing changed: the driver still holds its offer, and declines it once.
            driver.send(["type": "decline.trip", "data": ["id": trip]])
            let withdrawn = try await Self.next("trip.offer_withdrawn", on: driver)
            #expect(withdrawn["seq"] == nil)
            #expect(withdrawn["data"] as? [String: String] == ["trip_id": trip, "reason": "declined"])
            #expect(try await Self.error(after: ["type": "decline.trip", "data": ["id": trip]], on: driver).code == "no_offer")
            for socket in [driver, riderSocket] { await socket.close() }
        }
    }

    @Test("an offer carries distance, ETA and expiry; offline drivers get none; availability is answered")
    func offersAndAvailability() async throws {
        try await LiveHub.run { hub in
            let (_, driver) = try await Self.placedDriver(hub, "driver@example.com", metres: 300)
            let (_, resting) = try await Self.placedDriver(hub, "resting@example.com", metres: 100)
            resting.send(["type": "update.availability", "data": ["online": false]])
            let answer = try await resting.receiveJSON()
            #expect(answer["type"] as? String == "driver.availability")
            #expect(answer["data"] as? [String: Bool] == ["online": false])

            let rider = try await hub.account("rider@example.com")
            let riderSocket = try await hub.connect(rider)
            riderSocket.send(Self.createTrip())
            let trip = try #require((try await riderSocket.receiveJSON()["data"] as? [String: Any])?["id"] as? String)
            let frame = try await Self.next("echo.message", on: driver)
            let offer = try #require(frame["offer"] as? [String: Any])
            #expect(offer["round"] as? Int == 1)
            #expect(abs((offer["distance"] as? Int ?? 0) - 300) <= 1)
            #expect((offer["eta"] as? Int ?? 0) > 0)
            #expect(offer["expires_in"] as? Double == 15)
            #expect(offer["expires"] is String)
            #expect(frame["seq"] as? Int == 1)
            #expect((frame["data"] as? [String: Any])?["id"] as? String == trip)
            #expect(await resting.staysQuiet(), "an offline driver gets no offer")

            // Back online, it is offered the trip at the next tick.
            resting.send(["type": "update.availability", "data": ["online": true]])
            #expect(try await resting.receiveJSON()["data"] as? [String: Bool] == ["online": true])
            resting.send(Self.location(metresNorth: 100))
            let late = try await Self.next("echo.message", on: resting)
            #expect(late["offer"] != nil)
            for socket in [driver, resting, riderSocket] { await socket.close() }
        }
    }

    @Test("a request nobody takes ends CANCELED with cancel_reason no_driver_found within dispatchTimeout; holders hear it")
    func noDriverFound() async throws {
        try await LiveHub.run {
            $0.offerTimeout = .seconds(1)
            $0.dispatchTimeout = .seconds(2)
        } _: { hub in
            let (_, driver) = try await Self.placedDriver(hub, "driver@example.com", metres: 100)
            let rider = try await hub.account("rider@example.com")
            let riderSocket = try await hub.connect(rider)
            riderSocket.send(Self.createTrip(withPickUp: false))
            let trip = try #require((try await riderSocket.receiveJSON()["data"] as? [String: Any])?["id"] as? String)
            let started = ContinuousClock.now
            let ended = try await Self.next("echo.message", on: riderSocket) { $0["status"] as? String == "CANCELED" }
            #expect(ContinuousClock.now - started < .seconds(4))
            let data = try #require(ended["data"] as? [String: Any])
            #expect(data["id"] as? String == trip && data["cancel_reason"] as? String == "no_driver_found")
            let told = try await Self.next("echo.message", on: driver) { $0["status"] as? String == "CANCELED" }
            #expect((told["data"] as? [String: Any])?["cancel_reason"] as? String == "no_driver_found")
            // The reason is kept: the trip as REST reads it, from memory or the store.
            let listed = try await hub.trips(rider).first { $0["id"] as? String == trip }
            #expect(listed?["cancel_reason"] as? String == "no_driver_found")
            // A rider's own cancel says so.
            riderSocket.send(Self.createTrip(withPickUp: false))
            let second = try #require((try await riderSocket.receiveJSON()["data"] as? [String: Any])?["id"] as? String)
            riderSocket.send(["type": "cancel.trip", "data": ["id": second]])
            let canceled = try await Self.next("echo.message", on: riderSocket) { $0["id"] as? String == second && $0["status"] as? String == "CANCELED" }
            #expect((canceled["data"] as? [String: Any])?["cancel_reason"] as? String == "rider_canceled")
            for socket in [driver, riderSocket] { await socket.close() }
        }
    }

    @Test("IN_PROGRESS far from the pick-up is refused with too_far_from_pickup; the rider gets ETA, arriving and arrived")
    func pickUpAndArrival() async throws {
        try await LiveHub.run { hub in
            let (driverAccount, driver) = try await Self.placedDriver(hub, "driver@example.com", metres: 400)
            let rider = try await hub.account("rider@example.com")
            let riderSocket = try await hub.connect(rider)
            riderSocket.send(Self.createTrip())
            let trip = try #require((try await riderSocket.receiveJSON()["data"] as? [String: Any])?["id"] as? String)
            _ = try await Self.next("echo.message", on: driver)
            driver.send(["type": "update.trip", "data": ["id": trip, "status": "STARTED", "driver": driverAccount.id]])
            _ = try await Self.next("echo.message", on: driver) { $0["status"] as? String == "STARTED" }
            let error = try await Self.error(after: ["type": "update.trip", "data": ["id": trip, "status": "IN_PROGRESS"]], on: driver)
            #expect(error.code == "too_far_from_pickup" && error.requestType == "update.trip")

            driver.send(Self.location(metresNorth: 40))
            let location = try await Self.next("trip.location", on: riderSocket)
            let fix = try #require(location["data"] as? [String: Any])
            #expect(abs((fix["pickup_distance"] as? Int ?? 0) - 40) <= 1 && fix["pickup_eta"] is Int)
            let arriving = try await Self.next("trip.driver_arriving", on: riderSocket)
            #expect((arriving["data"] as? [String: Any])?["trip_id"] as? String == trip)
            #expect(arriving["seq"] as? Int == (location["seq"] as? Int ?? 0) + 1)
            // Waiting there, 5 s and more: arrived, once.
            try await Task.sleep(for: .milliseconds(5_200))
            driver.send(Self.location(metresNorth: 35))
            _ = try await Self.next("trip.location", on: riderSocket)
            let arrived = try await Self.next("trip.driver_arrived", on: riderSocket)
            #expect((arrived["data"] as? [String: Any])?["driver_id"] as? Int == driverAccount.id)
            driver.send(Self.location(metresNorth: 30))
            _ = try await Self.next("trip.location", on: riderSocket)
            #expect(await riderSocket.staysQuiet(), "each notice once")

            driver.send(["type": "update.trip", "data": ["id": trip, "status": "IN_PROGRESS"]])
            _ = try await Self.next("echo.message", on: riderSocket) { $0["status"] as? String == "IN_PROGRESS" }
            for socket in [driver, riderSocket] { await socket.close() }
        }
    }

    @Test("GET /api/demand/ is for operators only; the operator feed sends drivers' states and supply and demand")
    func operatorSupplyAndDemand() async throws {
        try await LiveHub.run { hub in
            let (_, driver) = try await Self.placedDriver(hub, "driver@example.com", metres: 0)
            let rider = try await hub.account("rider@example.com")
            let riderSocket = try await hub.connect(rider)
            riderSocket.send(Self.createTrip())
            _ = try await riderSocket.receiveJSON()
            #expect(try await hub.request("/api/demand/").status == .unauthorized)
            #expect(try await hub.request("/api/demand/", token: rider.access).status == .forbidden)
            let operatorAccount = try await OperatorTests.makeOperator(hub)
            let response = try await hub.request("/api/demand/", token: operatorAccount.access)
            #expect(response.status == .ok)
            let demand = try parseJSONObject(String(buffer: response.body))
            #expect(demand["cell_size"] as? Double == 1_000 && demand["window_seconds"] as? Int == 3_600)
            let cells = try #require(demand["cells"] as? [[String: Any]])
            #expect(cells.count == 1)
            #expect(cells.first?["waiting"] as? Int == 1 && cells.first?["available"] as? Int == 1 && cells.first?["no_driver_last_hour"] as? Int == 0)
            #expect(cells.first?["bounds"] is [String: Double] && cells.first?["center"] is [String: Double])
            #expect(demand["without_pick_up"] as? [String: Int] == ["waiting": 0, "no_driver_last_hour": 0])

            let watcher = try await hub.connect(operatorAccount)
            let drivers = try await OperatorTests.frame("operator.drivers", on: watcher) { !(($0["drivers"] as? [[Any]]) ?? []).isEmpty }
            #expect((drivers["drivers"] as? [[Double]])?.first?.count == 4)
            #expect(drivers["offline"] as? [Int] == [] && drivers["stale"] as? [Int] == [])
            let stats = try await OperatorTests.frame("operator.stats", on: watcher)
            #expect(stats["drivers"] as? [String: Int] == ["connected": 1, "busy": 0, "offline": 0, "stale": 0])
            let fed = try await OperatorTests.frame("operator.demand", on: watcher)
            #expect((fed["cells"] as? [[String: Any]])?.count == 1)
            driver.send(["type": "update.availability", "data": ["online": false]])
            _ = try await driver.receiveJSON()
            _ = try await OperatorTests.frame("operator.drivers", on: watcher) { data in
                (data["offline"] as? [Int])?.count == 1 && (data["stale"] as? [Int]) == []
            }
            for socket in [driver, riderSocket, watcher] { await socket.close() }
        }
    }
}
