import Foundation
import HubLauncher
import Testing
import TestSupport

/// GPS tracking, nearby dispatch, cancel, slow readers and resume over real sockets.
@Suite("GPS tracking over WebSockets", MachineLoad.shared, .timeLimit(.minutes(4)))
struct GPSSocketTests {
    static let downtown = (lat: 40.7128, lng: -74.0060)

    /// A rider and a driver with a `STARTED` trip, both connected.
    struct Ride {
        let rider: LiveHub.Account
        let driver: LiveHub.Account
        let riderSocket: TestSocket
        let driverSocket: TestSocket
        let tripID: String
        /// The trip's seq after the driver accepted it.
        let acceptedSeq: Int

        static func start(_ hub: LiveHub, pair: Int = 0) async throws -> Ride {
            let rider = try await hub.account("rider\(pair)@example.com")
            let driver = try await hub.account("driver\(pair)@example.com", group: "driver")
            let riderSocket = try await hub.connect(rider)
            let tripID = try #require(try await hub.requestTrip(rider, on: riderSocket)["id"] as? String)
            let driverSocket = try await hub.connect(driver)
            driverSocket.send(["type": "update.trip", "data": ["id": tripID, "status": "STARTED", "driver": driver.id]])
            let accepted = try await riderSocket.receiveJSON()
            #expect(try await driverSocket.receiveJSON()["seq"] as? Int == accepted["seq"] as? Int)
            return Ride(
                rider: rider, driver: driver, riderSocket: riderSocket, driverSocket: driverSocket, tripID: tripID,
                acceptedSeq: try #require(accepted["seq"] as? Int)
            )
        }

        func close() async {
            await riderSocket.close()
            await driverSocket.close()
        }
    }

    static func location(_ n: Int) -> [String: Any] {
        ["type": "update.location", "data": ["lat": latitude(n), "lng": downtown.lng, "heading": 45.5, "speed": 9.25]]
    }

    /// The latitude of fix `n`: steps of 1/8192 degree (about 14 m), exact in binary and decimal,
    /// so the values compare exactly after the JSON round trips.
    static func latitude(_ n: Int) -> Double {
        40.75 + Double(n) / 8192
    }

    @Test("a driver's locations reach the rider in order; the track goes to the rider and driver only")
    func locationsReachRider() async throws {
        try await LiveHub.run { $0.locationRateLimit = 1_000 } _: { hub in
            let ride = try await Ride.start(hub)
            var seqs: [Int] = []
            for n in 0..<20 {
                ride.driverSocket.send(Self.location(n))
                let frame = try await ride.riderSocket.receiveJSON()
                #expect(frame["type"] as? String == "trip.location")
                let data = try #require(frame["data"] as? [String: Any])
                #expect(data["lat"] as? Double == Self.latitude(n))
                #expect(data["lng"] as? Double == Self.downtown.lng)
                #expect(data["heading"] as? Double == 45.5 && data["speed"] as? Double == 9.25 && data["accuracy"] is NSNull)
                #expect(data["trip_id"] as? String == ride.tripID && data["driver_id"] as? Int == ride.driver.id)
                #expect(data["seq"] as? Int == frame["seq"] as? Int)
                seqs.append(try #require(frame["seq"] as? Int))
            }
            #expect(seqs == Array((ride.acceptedSeq + 1)...(ride.acceptedSeq + 20)))
            #expect(await ride.driverSocket.staysQuiet(), "the driver does not get its own locations back")

            // A burst faster than the rider reads: in order, ending with the latest (some may coalesce).
            for n in 20..<60 { ride.driverSocket.send(Self.location(n)) }
            var burst: [Int] = []
            while burst.last != ride.acceptedSeq + 60 {
                burst.append(try #require(try await ride.riderSocket.receiveJSON()["seq"] as? Int))
            }
            #expect(burst == burst.sorted() && Set(burst).count == burst.count)
            seqs += (ride.acceptedSeq + 21)...(ride.acceptedSeq + 60)

            for account in [ride.rider, ride.driver] {
                let response = try await hub.request("/api/trip/\(ride.tripID)/track/", token: account.access)
                #expect(response.status == .ok)
                let track = try parseJSONObject(String(buffer: response.body))
                #expect(track["trip_id"] as? String == ride.tripID)
                let points = try #require(track["points"] as? [[String: Any]])
                #expect(points.compactMap { $0["seq"] as? Int } == seqs)
                #expect(points.last?["lat"] as? Double == Self.latitude(59))
            }
            // Once the trip is finished and has left memory, the same track comes from the store.
            ride.driverSocket.send(["type": "update.trip", "data": ["id": ride.tripID, "status": "COMPLETED"]])
            _ = try await ride.riderSocket.receiveJSON()
            try await Task.sleep(for: .seconds(1))
            let stored = try await hub.request("/api/trip/\(ride.tripID)/track/", token: ride.rider.access)
            let storedPoints = try #require(try parseJSONObject(String(buffer: stored.body))["points"] as? [[String: Any]])
            #expect(storedPoints.compactMap { $0["seq"] as? Int } == seqs)
            #expect(storedPoints.last?["speed"] as? Double == 9.25 && storedPoints.last?["heading"] as? Double == 45.5)

            let stranger = try await hub.account("stranger@example.com", group: "driver")
            #expect(try await hub.request("/api/trip/\(ride.tripID)/track/", token: stranger.access).status == .notFound)
            #expect(try await hub.request("/api/trip/\(UUID().uuidString)/track/", token: ride.rider.access).status == .notFound)
            #expect(try await hub.request("/api/trip/\(ride.tripID)/track/").status == .unauthorized)
            await ride.close()
        }
    }

    @Test("fixes sent right before COMPLETED are recorded first, whichever event loops the rider, driver and trip run on")
    func fixesBeforeStateChange() async throws {
        // Connections spread over both loops, so some trips get their fixes from the loop they
        // run on (recorded in place) and some from the other (handed over as jobs).
        try await LiveHub.run {
            $0.locationRateLimit = 1_000
            $0.eventLoops = 2
        } _: { hub in
            var rides: [Ride] = []
            for pair in 0..<6 { rides.append(try await Ride.start(hub, pair: pair)) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for ride in rides {
                    group.addTask {
                        for n in 0..<30 { ride.driverSocket.send(Self.location(n)) }
                        ride.driverSocket.send(["type": "update.trip", "data": ["id": ride.tripID, "status": "COMPLETED"]])
                        var seqs: [Int] = []
                        var lastLatitude: Double?
                        while true {
                            let frame = try await ride.riderSocket.receiveJSON()
                            seqs.append(try #require(frame["seq"] as? Int))
                            let data = try #require(frame["data"] as? [String: Any])
                            guard frame["type"] as? String == "trip.location" else {
                                #expect(data["status"] as? String == "COMPLETED")
                                break
                            }
                            lastLatitude = data["lat"] as? Double
                        }
                        #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count)
                        #expect(seqs.last == ride.acceptedSeq + 31, "30 fixes, then COMPLETED")
                        #expect(lastLatitude == Self.latitude(29), "the last fix reached the rider before COMPLETED")
                        let response = try await hub.request("/api/trip/\(ride.tripID)/track/", token: ride.rider.access)
                        let points = try #require(try parseJSONObject(String(buffer: response.body))["points"] as? [[String: Any]])
                        #expect(points.compactMap { $0["seq"] as? Int } == Array((ride.acceptedSeq + 1)...(ride.acceptedSeq + 30)))
                        await ride.close()
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test("bad locations get their error, a flood gets rate_limited, and the socket stays usable")
    func badLocationsAndRateLimit() async throws {
        try await LiveHub.run { $0.locationRateLimit = 2 } _: { hub in
            let ride = try await Ride.start(hub)
            let cases: [(Any, String)] = [
                (["lat": 91, "lng": 0], "invalid"),
                (["lat": 0, "lng": 180.0001], "invalid"),
                (["lat": 10, "lng": 10, "speed": 500], "invalid"),
                (["lat": 10, "lng": 10, "heading": -1], "invalid"),
                (["lat": 10, "lng": 10, "timestamp": 1], "invalid"),
                (["lat": "10", "lng": 10], "bad_message"),
                (["lng": 10], "invalid"),
                ("north", "bad_message"),
            ]
            for (data, code) in cases {
                ride.driverSocket.send(["type": "update.location", "data": data])
                let reply = try await ride.driverSocket.receiveJSON()
                let error = try #require(reply["data"] as? [String: Any])
                #expect(reply["type"] as? String == "error" && error["code"] as? String == code, "\(data)")
                #expect(error["request_type"] as? String == "update.location")
                // Each refused fix still spends a token; wait for the bucket to refill.
                try await Task.sleep(for: .milliseconds(600))
            }
            ride.riderSocket.send(["type": "update.location", "data": ["lat": 1, "lng": 1]])
            #expect((try await ride.riderSocket.receiveJSON()["data"] as? [String: Any])?["code"] as? String == "forbidden")
            #expect(await ride.riderSocket.staysQuiet(), "no bad location reached the rider")

            // A full bucket holds 2 tokens: of 8 fixes sent at once, 2 pass (more if the bucket
            // refilled while a busy machine read them) and the rest get rate_limited. The rider may
            // see the passed ones coalesced into the latest.
            try await Task.sleep(for: .seconds(1))
            for n in 0..<8 { ride.driverSocket.send(Self.location(n)) }
            var limited = 0
            while let reply = try? await ride.driverSocket.receiveJSON(timeout: .milliseconds(500)) {
                #expect((reply["data"] as? [String: Any])?["code"] as? String == "rate_limited")
                limited += 1
            }
            var delivered = 0
            while let frame = try? await ride.riderSocket.receiveJSON(timeout: .milliseconds(500)) {
                #expect(frame["type"] as? String == "trip.location")
                delivered += 1
            }
            #expect((3...6).contains(limited) && (1...5).contains(delivered))
            let echo = #"{"type":"echo.message","data":"still here"}"#
            ride.driverSocket.send(echo)
            #expect(try await ride.driverSocket.receive() == echo)
            await ride.close()
        }
    }

    @Test("create.trip with a pick-up alerts the nearest drivers only; cancel.trip tells them")
    func nearbyDispatchAndCancel() async throws {
        try await LiveHub.run { $0.dispatchDrivers = 2 } _: { hub in
            let rider = try await hub.account("rider@example.com")
            var drivers: [TestSocket] = []
            // Drivers 300 m, 600 m and 900 m north of the pick-up: the two nearest are alerted.
            for n in 1...3 {
                let socket = try await hub.connect(try await hub.account("driver\(n)@example.com", group: "driver"))
                socket.send(["type": "update.location", "data": ["lat": Self.downtown.lat + Double(n) * 300 / 111_195, "lng": Self.downtown.lng]])
                drivers.append(socket)
            }
            // A location is answered with nothing; an echo round trip proves it was handled.
            for socket in drivers {
                socket.send(#"{"type":"echo.message","data":"sync"}"#)
                _ = try await socket.receive()
            }
            let riderSocket = try await hub.connect(rider)
            riderSocket.send([
                "type": "create.trip",
                "data": [
                    "pick_up_address": "A", "drop_off_address": "B",
                    "pick_up_location": ["lat": Self.downtown.lat, "lng": Self.downtown.lng],
                    "drop_off_location": ["lat": 40.75, "lng": -73.99],
                ],
            ])
            let created = try #require(try await riderSocket.receiveJSON()["data"] as? [String: Any])
            #expect((created["pick_up_location"] as? [String: Any])?["lat"] as? Double == Self.downtown.lat)
            #expect((created["drop_off_location"] as? [String: Any])?["lng"] as? Double == -73.99)
            let tripID = try #require(created["id"] as? String)
            for socket in drivers.prefix(2) {
                #expect((try await socket.receiveJSON()["data"] as? [String: Any])?["id"] as? String == tripID)
            }
            #expect(await drivers[2].staysQuiet())

            riderSocket.send(["type": "cancel.trip", "data": ["id": tripID]])
            #expect((try await riderSocket.receiveJSON()["data"] as? [String: Any])?["status"] as? String == "CANCELED")
            for socket in drivers.prefix(2) {
                #expect((try await socket.receiveJSON()["data"] as? [String: Any])?["status"] as? String == "CANCELED")
            }
            riderSocket.send(["type": "cancel.trip", "data": ["id": tripID]])
            #expect((try await riderSocket.receiveJSON()["data"] as? [String: Any])?["code"] as? String == "invalid_transition")
            drivers[0].send(["type": "update.trip", "data": ["id": tripID, "status": "STARTED"]])
            #expect((try await drivers[0].receiveJSON()["data"] as? [String: Any])?["code"] as? String == "invalid_transition")
            for socket in drivers + [riderSocket] { await socket.close() }
        }
    }

    @Test("a client that stops reading gets only the latest locations, loses no state change, and others keep up")
    func slowReaderIsCoalesced() async throws {
        try await LiveHub.run {
            $0.locationRateLimit = 1_000_000
            $0.messageRateLimit = 1_000_000
            $0.outboundQueueLength = 2_000
        } _: { hub in
            let ride = try await Ride.start(hub)
            // A second socket of the rider that reads nothing for a while. Its 1,500 echo replies of
            // 16 KB fill the kernel's buffers and most of its queue; without coalescing the 2,000
            // locations that follow would overflow it.
            let slow = try await hub.connect(ride.rider, readDelay: .seconds(10))
            let payload = String(repeating: "x", count: 16 * 1024)
            for _ in 0..<1_500 { slow.send(#"{"type":"echo.message","data":"\#(payload)"}"#) }
            let locations = 2_000
            var longestQueue = 0
            for n in 0..<locations {
                ride.driverSocket.send(Self.location(n))
                if n == locations / 2 {
                    ride.driverSocket.send(["type": "update.trip", "data": ["id": ride.tripID, "status": "IN_PROGRESS"]])
                }
                // The healthy socket sees every location as it comes.
                let frame = try await ride.riderSocket.receiveJSON()
                if frame["type"] as? String == "echo.message" {
                    #expect((frame["data"] as? [String: Any])?["status"] as? String == "IN_PROGRESS")
                    _ = try await ride.riderSocket.receiveJSON()
                }
                if n % 250 == 0 { longestQueue = max(longestQueue, try await Self.longestQueue(hub)) }
            }
            _ = try await ride.driverSocket.receiveJSON()  // the driver's own IN_PROGRESS
            let lastSeq = ride.acceptedSeq + locations + 1
            #expect(longestQueue <= 1_500 + 2)

            // Once it reads: every echo, the state change, locations in order ending with the latest.
            var echoes = 0
            var seqs: [Int] = []
            var sawInProgress = false
            while echoes < 1_500 || seqs.last != lastSeq {
                let frame = try await slow.receiveJSON(timeout: .seconds(30))
                switch frame["type"] as? String {
                case "echo.message" where frame["seq"] == nil: echoes += 1
                case "echo.message":
                    sawInProgress = (frame["data"] as? [String: Any])?["status"] as? String == "IN_PROGRESS"
                    seqs.append(try #require(frame["seq"] as? Int))
                default: seqs.append(try #require(frame["seq"] as? Int))
                }
            }
            #expect(echoes == 1_500)
            #expect(sawInProgress)
            #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count)
            #expect(seqs.count < locations, "locations were coalesced, not all queued")
            await slow.close()
            await ride.close()
        }
    }

    static func longestQueue(_ hub: LiveHub) async throws -> Int {
        let metrics = String(buffer: try await hub.request("/metrics").body)
        let line = try #require(metrics.split(separator: "\n").first { $0.hasPrefix("taxihub_outbound_queue_longest ") })
        return Int(Double(line.split(separator: " ")[1]) ?? -1)
    }

    @Test("after a dropped connection, resume replays the missed events exactly once")
    func resumeAfterReconnect() async throws {
        try await LiveHub.run { hub in
            let ride = try await Ride.start(hub)
            await ride.riderSocket.close()
            for n in 0..<5 { ride.driverSocket.send(Self.location(n)) }
            ride.driverSocket.send(["type": "update.trip", "data": ["id": ride.tripID, "status": "IN_PROGRESS"]])
            _ = try await ride.driverSocket.receiveJSON()
            let socket = try await hub.connect(ride.rider)
            socket.send(["type": "resume", "data": ["trips": [ride.tripID: ride.acceptedSeq]]])
            var seqs: [Int] = []
            for _ in 0..<6 { seqs.append(try #require(try await socket.receiveJSON()["seq"] as? Int)) }
            #expect(seqs == Array((ride.acceptedSeq + 1)...(ride.acceptedSeq + 6)))
            // The end of the replay, after it: the client may move its resume point on now.
            let done = try await socket.receiveJSON()
            #expect(done["type"] as? String == "resume.done")
            #expect((done["data"] as? [String: Any])?["trip_id"] as? String == ride.tripID)
            #expect((done["data"] as? [String: Any])?["seq"] as? Int == ride.acceptedSeq + 6)
            socket.send(["type": "resume", "data": ["trips": [ride.tripID: ride.acceptedSeq]]])
            let again = try await socket.receiveJSON()
            #expect(again["type"] as? String == "resume.done", "a second resume replays nothing, and still ends")
            #expect(await socket.staysQuiet(for: .milliseconds(500)), "a second resume replays nothing")
            ride.driverSocket.send(Self.location(9))
            #expect(try await socket.receiveJSON()["seq"] as? Int == ride.acceptedSeq + 7)
            #expect(await socket.staysQuiet())

            socket.send(["type": "resume", "data": ["trips": [UUID().uuidString: 0]]])
            #expect((try await socket.receiveJSON()["data"] as? [String: Any])?["code"] as? String == "not_found")
            socket.send(["type": "resume", "data": ["trips": ["not-a-uuid": 0]]])
            #expect((try await socket.receiveJSON()["data"] as? [String: Any])?["code"] as? String == "invalid")
            await socket.close()
            await ride.driverSocket.close()
        }
    }
}
