import Foundation
import HubLauncher
import TestSupport
import Testing
import Web

@testable import LoadTest
import TestSupport

/// The load generator runs against a live hub for a few seconds with small counts, so it cannot
/// rot: every report field is there, latencies were measured, every race had one winner.
@Suite("Load generator", MachineLoad.exclusive, .timeLimit(.minutes(4)))
struct LoadTestSmokeTests {
    @Test("a short run of two rounds with baseline, and idle connections, reports every field, one winner per race, no failed connection")
    func smokeRun() async throws {
        try await LiveHub.run(configure: {
            $0.benchRoutes = true
            $0.locationRateLimit = 1_000
        }) { hub in
            var settings = LoadTestSettings()
            settings.url = "http://127.0.0.1:\(hub.port)"
            settings.drivers = 20
            settings.riders = 5
            settings.gpsHz = 2
            settings.duration = 2
            settings.warmup = 0
            settings.baseline = true
            settings.rounds = 2
            settings.idle = 50
            settings.idleHold = 0.5
            settings.sourceAddresses = try LoadTestSettings.sourceAddresses("127.0.0.1-127.0.0.2")
            let report = try await LoadTest.run(settings) { _ in }
            let json = try #require(try JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any])

            for key in ["location_latency_ms", "alert_latency_ms", "accept_latency_ms"] {
                let summary = try #require(json[key] as? [String: Any], "\(key) missing")
                #expect(Set(summary.keys).isSuperset(of: ["p50", "p99", "p999", "max", "count"]))
                #expect(summary["count"] as? Int ?? 0 > 0, "no \(key) measured")
            }
            for key in ["in_progress_latency_ms", "completed_latency_ms", "cancel_latency_ms"] {
                #expect((json[key] as? [String: Any]).map { Set($0.keys).isSuperset(of: ["p50", "p99", "count"]) } == true, "\(key) missing")
            }
            // Trip changes in the windows (the riders' first requests, spread over the first half second) and the hub's commits.
            let changes = try #require(json["trip_changes"] as? [String: Any])
            #expect(changes["creates"] as? Int ?? 0 > 0 && changes["accepts"] as? Int ?? 0 > 0)
            #expect(changes["total"] as? Int ?? 0 >= (changes["creates"] as? Int ?? 0) + (changes["accepts"] as? Int ?? 0))
            let commits = try #require(json["hub_commits"] as? [String: Any], "no commit counters read from /metrics")
            #expect(commits["commits"] as? Int ?? 0 > 0 && commits["changes_per_commit"] as? Double ?? 0 >= 1)
            #expect(json["location_updates_per_s"] as? Double ?? 0 > 0)
            #expect(json["errors"] is [String: Any])
            #expect(json["errors"].flatMap { ($0 as? [String: Int])?["rate_limited"] } == nil)
            let races = try #require(json["races"] as? [String: Any])
            #expect(races["trips"] as? Int ?? 0 > 0)
            #expect(races["winners"] as? Int == races["trips"] as? Int)
            #expect(json["hub_cpu_seconds"] as? Double ?? 0 > 0)
            #expect(json["connection_failures"] as? Int == 0)

            let baseline = try #require(json["baseline"] as? [String: Any])
            #expect((baseline["location_latency_ms"] as? [String: Any])?["count"] as? Int ?? 0 > 0)
            #expect(json["cpu_per_message_ratio"] is Double)
            let rounds = try #require(json["rounds"] as? [[String: Any]])
            #expect(rounds.count == 2)
            for round in rounds {
                #expect(round["hub_cpu_us_per_message"] as? Double ?? 0 > 0 && round["echo_cpu_us_per_message"] as? Double ?? 0 > 0)
                #expect(round["cpu_per_message_ratio"] is Double && round["location_p99_ms"] is Double)
            }
            // The run's latencies sum both rounds.
            let location = try #require(json["location_latency_ms"] as? [String: Any])
            #expect(location["count"] as? Int ?? 0 >= 2, "both rounds measured locations")

            let idle = try #require(json["idle"] as? [String: Any])
            #expect(idle["connections"] as? Int == 50)
            #expect(idle["hub_rss_bytes"] as? Int ?? 0 > 0)
            #expect(idle["bytes_per_connection"] is Double)
            #expect(idle["healthz_after"] as? Int == 200)
        }
    }

    @Test(
        "the hub SIGKILLed mid-run and restarted on the same port with another secret, sockets dropped on purpose: the run completes, clients reconnect (fresh tokens after the 401s) and resume, the record holds every (trip, seq) once, and locations flow after the restart"
    )
    func survivesHubRestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-soak-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let hubArguments = ["--bench-routes", "--location-rate-limit", "1000"]
        let first = try await TestHub.process(directory: directory, arguments: hubArguments)
        let recordPath = directory.appendingPathComponent("record.jsonl").path
        var settings = LoadTestSettings()
        settings.url = "http://127.0.0.1:\(first.port)"
        settings.drivers = 20
        settings.riders = 8
        settings.gpsHz = 5
        settings.speed = 60
        settings.tripBlocks = 1
        settings.riderPause = 0.3
        settings.warmup = 1
        settings.duration = 13
        settings.dropEvery = 2
        settings.dropShare = 0.2
        settings.recordPath = recordPath
        settings.userPrefix = "soak"
        let run = Task { try await LoadTest.run(settings) { _ in } }

        try await Task.sleep(for: .seconds(5))
        try await first.stop(signal: SIGKILL)
        try await Task.sleep(for: .seconds(1))
        let second = try await TestHub.process(
            directory: directory, arguments: hubArguments + ["--port", "\(first.port)"], secret: "another-secret-for-the-restarted-hub"
        )
        let restartedAt = Date().timeIntervalSince1970
        let report: LoadTestReport
        do {
            report = try await run.value
        } catch {
            try await second.stop()
            throw error
        }
        try await second.stop()

        #expect(report.reconnects > 0)
        #expect(report.drops > 0)
        #expect(report.connectionFailureReasons["http_401", default: 0] > 0, "\(report.connectionFailureReasons)")
        #expect(report.tripsCompleted > 0)
        let lines = try String(contentsOfFile: recordPath, encoding: .utf8).split(separator: "\n").map { try parseJSONObject(String($0)) }
        #expect(lines.first?["kind"] as? String == "start")
        #expect(lines.last?["kind"] as? String == "end")
        let summary = try #require(lines.last?["summary"] as? [String: Any])
        #expect(summary["reconnects"] as? Int == report.reconnects)
        #expect(lines.filter { $0["kind"] as? String == "window" }.count >= 10)
        #expect(lines.filter { $0["kind"] as? String == "drop" }.count >= 3)

        // Each (trip, seq) once; a trip's states, in seq order, only move forward.
        let rank = ["REQUESTED": 0, "STARTED": 1, "IN_PROGRESS": 2, "COMPLETED": 3, "CANCELED": 3]
        var seqs: [String: [Int]] = [:]
        var states: [String: [(seq: Int, rank: Int)]] = [:]
        for line in lines where ["event", "location"].contains(line["kind"] as? String) {
            let trip = try #require(line["trip"] as? String)
            let seq = try #require(line["seq"] as? Int)
            seqs[trip, default: []].append(seq)
            if line["kind"] as? String == "event" {
                states[trip, default: []].append((seq, try #require(rank[line["status"] as? String ?? ""])))
            }
        }
        #expect(!seqs.isEmpty)
        for (trip, numbers) in seqs {
            #expect(Set(numbers).count == numbers.count, "a (trip, seq) recorded twice: \(trip)")
            #expect(numbers.allSatisfy { $0 > 0 })
        }
        for (trip, events) in states {
            let ranks = events.sorted { $0.seq < $1.seq }.map(\.rank)
            #expect(ranks == ranks.sorted(), "trip \(trip) went backwards: \(events)")
        }
        let ack = try #require(report.acknowledged)
        #expect(ack.events + ack.locations == seqs.values.map(\.count).reduce(0, +))
        let latestLocation = lines.filter { $0["kind"] as? String == "location" }.compactMap { $0["t"] as? Double }.max() ?? 0
        #expect(latestLocation > restartedAt + 2, "no location received after the restart")
    }

    @Test(
        "two separate hubs (--url twice): the clients are spread round robin over both, each hub carries load, races have one winner, no connection fails"
    )
    func spreadOverTwoHubs() async throws {
        let configure: @Sendable (inout HubConfiguration) -> Void = {
            $0.benchRoutes = true
            $0.locationRateLimit = 1_000
        }
        try await LiveHub.run(configure: configure) { first in
            try await LiveHub.run(configure: configure) { second in
                var settings = Self.shortLoad()
                settings.urls = ["http://127.0.0.1:\(first.port)", "http://127.0.0.1:\(second.port)"]
                let report = try await LoadTest.run(settings) { _ in }

                #expect(report.hubCount == 2)
                #expect(report.settings.urls == settings.urls)
                #expect(report.nodes.map(\.url) == settings.urls)
                // 21 drivers and 7 riders: clients 0, 2, … 26 on the first hub, 1, 3, … 27 on the second.
                #expect(report.nodes.map(\.clientsStarted) == [14, 14])
                #expect(report.nodes.allSatisfy { $0.reconnectsMovedAway == 0 && $0.reconnectsMovedIn == 0 })
                #expect(report.nodes.allSatisfy { ($0.hubCpuSeconds ?? 0) > 0 && ($0.hubRssBytes ?? 0) > 0 })
                #expect(report.connectionFailures == 0, "\(report.connectionFailureReasons)")
                #expect(report.locationLatencyMs.count > 0)
                #expect(report.races.trips > 0)
                #expect(report.races.winners == report.races.trips)
                #expect(report.markdown.contains("| hub (2 URLs) |"))

                // Each hub saw its own share of the users: trips were made on both.
                for hub in [first, second] {
                    let metrics = String(buffer: try await hub.request("/metrics").body)
                    let created = metrics.split(separator: "\n").first { $0.hasPrefix(#"taxihub_messages_in_total{type="create.trip"}"#) }
                    #expect(created.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } } ?? 0 > 0, "no trip on \(hub.port): \(created ?? "no counter")")
                }
            }
        }
    }

    @Test(
        "one of two URLs is a closed port: the clients assigned to it move to the other hub, and the run completes with load"
    )
    func movesOffADeadURL() async throws {
        try await LiveHub.run(configure: {
            $0.benchRoutes = true
            $0.locationRateLimit = 1_000
        }) { hub in
            var settings = Self.shortLoad()
            let dead = "http://127.0.0.1:\(try FreePort.find())"
            settings.urls = [dead, "http://127.0.0.1:\(hub.port)"]
            let report = try await LoadTest.run(settings) { _ in }

            #expect(report.hubCount == 2)
            #expect(report.nodes.map(\.clientsStarted) == [14, 14])
            // Every client of the dead URL moved to the live hub, and stayed there.
            #expect(report.nodes[0].reconnectsMovedAway == 14)
            #expect(report.nodes[1].reconnectsMovedIn == 14)
            #expect(report.nodes[1].reconnectsMovedAway == 0)
            #expect(report.nodes[0].hubCpuSeconds == nil)
            #expect((report.nodes[1].hubCpuSeconds ?? 0) > 0)
            #expect(report.connectionFailureReasons["connect", default: 0] >= 14, "\(report.connectionFailureReasons)")
            #expect(report.warnings.contains { $0.contains(dead) && $0.contains("did not answer at the start") }, "\(report.warnings)")
            #expect(report.locationLatencyMs.count > 0)
            #expect(report.locationUpdatesPerS > 0)
            #expect(report.races.trips > 0)
            #expect(report.races.winners == report.races.trips)
        }
    }

    @Test(
        "drivers decline a share of offers and let a share expire, a share of requests goes where no driver is: the offer rounds are counted, those requests end no_driver_found within dispatchTimeout, and every request ends"
    )
    func offerRounds() async throws {
        let dispatchTimeout = 2.0
        try await LiveHub.run(configure: {
            $0.benchRoutes = true
            $0.locationRateLimit = 1_000
            // Rounds of two drivers, so that rounds where nobody races (both declined or let the
            // offer expire) are common; short timeouts, so that offers expire and unserved
            // requests end inside a short run.
            $0.dispatchDrivers = 2
            $0.offerTimeout = .seconds(1)
            $0.dispatchTimeout = .seconds(2)
        }) { hub in
            var settings = Self.shortLoad()
            settings.url = "http://127.0.0.1:\(hub.port)"
            settings.riders = 10
            settings.warmup = 0
            settings.duration = 5
            settings.declineShare = 0.4
            settings.ignoreShare = 0.3
            settings.unservedShare = 0.3
            settings.unservedWait = 8
            let report = try await LoadTest.run(settings) { _ in }
            let dispatch = report.dispatch
            let outcomes = report.requestOutcomes

            #expect(report.settings.declineShare == 0.4 && report.settings.unservedShare == 0.3)
            #expect(dispatch.offersReceived > 0 && dispatch.offersPerRequest > 0)
            #expect(dispatch.offersDeclined > 0, "no offer declined")
            #expect(dispatch.offersLetExpire > 0, "no offer let expire")
            // A decline is answered by its withdrawal, unless the trip was taken first (`no_offer`).
            #expect(dispatch.withdrawals["declined", default: 0] > 0, "\(dispatch.withdrawals)")
            #expect(dispatch.messagesToDriversPerRequest >= dispatch.offersPerRequest)
            // Each unserved request skips to the largest radius at once, and the rider hears it.
            #expect(dispatch.unservedRequests > 0)
            #expect(dispatch.searchingRounds > 0)
            #expect(dispatch.noDriverFound > 0, "no unserved request ended no_driver_found")
            #expect(dispatch.unservedGivenUp == 0, "the hub left an unserved request waiting past --unserved-wait")
            #expect(dispatch.meanWaitS > 0 && dispatch.tripTicksPerRequest >= 1 && dispatch.hubCpuMsPerRequest > 0)
            let noDriver = report.noDriverFoundLatencyMs
            #expect(noDriver.count > 0)
            #expect(noDriver.p50 >= dispatchTimeout * 1_000 - 50, "no_driver_found came before dispatchTimeout: \(noDriver)")
            #expect(noDriver.max <= (dispatchTimeout + 2) * 1_000, "no_driver_found came late: \(noDriver)")

            // Every request ended (accepted, without a driver, canceled, failed) or still waits, and
            // none waits longer than dispatchTimeout plus a tick and some slack. (Counters and the
            // waiting requests are read a moment apart: one request may end between the two.)
            let ended = outcomes.accepted + outcomes.noDriverFound + outcomes.noDriverFoundServed + outcomes.canceled + outcomes.failed
            #expect((0...1).contains(outcomes.sent - ended - outcomes.waitingAtEnd), "\(outcomes)")
            #expect(outcomes.accepted > 0 && outcomes.noDriverFound > 0)
            #expect(outcomes.failed == 0, "\(outcomes) \(report.errors)")
            #expect(outcomes.oldestWaitingS < dispatchTimeout + 2, "a request waited past dispatchTimeout: \(outcomes)")
            #expect(report.races.winners == report.races.trips)
            #expect(report.connectionFailures == 0, "\(report.connectionFailureReasons)")

            let json = try #require(try JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any])
            let fields = try #require(json["dispatch"] as? [String: Any])
            #expect(Set(fields.keys).isSuperset(of: ["offers_received", "offers_declined", "offers_let_expire", "withdrawals", "searching_rounds", "no_driver_found", "messages_to_drivers_per_request", "trip_ticks_per_request", "hub_cpu_ms_per_request"]))
            #expect((json["no_driver_found_latency_ms"] as? [String: Any])?["count"] as? Int == noDriver.count)
            #expect((json["request_outcomes"] as? [String: Any])?["sent"] as? Int == outcomes.sent)
            #expect(report.markdown.contains("create.trip → no_driver_found"))
        }
    }

    /// A few seconds of load with small counts.
    private static func shortLoad() -> LoadTestSettings {
        var settings = LoadTestSettings()
        settings.drivers = 21
        settings.riders = 7
        settings.gpsHz = 4
        settings.speed = 40
        settings.tripBlocks = 1
        settings.riderPause = 0.3
        settings.warmup = 1
        settings.duration = 3
        return settings
    }

    @Test("without bench routes, /bench/users and /bench/echo are 404")
    func benchRoutesOff() async throws {
        try await LiveHub.run { hub in
            let users = try await hub.request("/bench/users", method: .post, json: ["prefix": "x", "count": 1, "group": "rider"])
            #expect(users.status == .notFound)
            #expect(try await hub.request("/bench/echo").status == .notFound)
        }
    }

    @Test("/bench/users makes the batch once and reuses it; the tokens open /taxi/")
    func benchUsers() async throws {
        try await LiveHub.run(configure: { $0.benchRoutes = true }) { hub in
            let body: [String: Any] = ["prefix": "lt-driver", "count": 3, "group": "driver"]
            let first = try parseJSONArray(String(buffer: try await hub.request("/bench/users", method: .post, json: body).body))
            let again = try parseJSONArray(String(buffer: try await hub.request("/bench/users", method: .post, json: body).body))
            #expect(first.map { $0["username"] as? String } == ["lt-driver-1", "lt-driver-2", "lt-driver-3"])
            #expect(first.map { $0["id"] as? Int } == again.map { $0["id"] as? Int })
            let token = try #require(first.first?["access"] as? String)
            let socket = try await TestSocket.connect(port: hub.port, token: token)
            socket.send(["type": "echo.message", "data": "hello"])
            #expect(try await socket.receiveJSON()["data"] as? String == "hello")
            let wrongGroup = try await hub.request("/bench/users", method: .post, json: ["prefix": "lt-driver", "count": 1, "group": "rider"])
            #expect(wrongGroup.status == .badRequest)
        }
    }

    @Test("the generator reads the hub's frames: trips with nested users and locations, errors")
    func parsesFrames() {
        let trip = #"{"data":{"created":"2026-11-24T10:00:00.123456Z","driver":{"first_name":"D","group":"driver","id":7,"#
            + #""last_name":"x","photo":null,"username":"d"},"drop_off_address":"B","drop_off_location":{"lat":52.5,"lng":13.4},"#
            + #""id":"8d5c0b55-0000-4000-8000-000000000001","pick_up_address":"A \"quoted\"","pick_up_location":{"lat":52.51,"lng":13.41},"#
            + #""rider":{"first_name":"R","group":"rider","id":3,"last_name":"y","photo":null,"username":"r"},"status":"STARTED","#
            + #""updated":"2026-11-24T10:00:00.123456Z"},"seq":2,"type":"echo.message"}"#
        #expect(
            HubFrame.parse(trip)
                == .trip(
                    .init(
                        id: "8d5c0b55-0000-4000-8000-000000000001", seq: 2, status: "STARTED", riderID: 3, driverID: 7,
                        pickUp: Coordinates(lat: 52.51, lng: 13.41), dropOff: Coordinates(lat: 52.5, lng: 13.4)
                    )
                )
        )
        let location = #"{"data":{"accuracy":5,"driver_id":7,"heading":90,"lat":52.5212346,"lng":13.4,"seq":3,"speed":10,"#
            + #""timestamp":"2026-11-24T10:00:00.123000Z","trip_id":"t-1"},"seq":3,"type":"trip.location"}"#
        #expect(HubFrame.parse(location) == .location(tripID: "t-1", driverID: 7, at: Coordinates(lat: 52.5212346, lng: 13.4), seq: 3))
        let error = #"{"data":{"code":"trip_taken","message":"Another driver has taken this trip.","request_type":"update.trip"},"type":"error"}"#
        #expect(HubFrame.parse(error) == .error(code: "trip_taken", requestType: "update.trip"))
        let fix = ClientFrames.location(Coordinates(lat: 52.5, lng: 13.4), heading: 90, speed: 10, timestamp: 123_456_789)
        #expect(HubFrame.parse(fix) == .echoedFix(scheduledAt: 123_456_789))
        #expect(HubFrame.parse("not json") == .other)

        // Offer rounds (docs/protocol.md §3.3, §3.6): an offer's round, a cancel's reason, withdrawals, new rounds.
        let offer = #"{"data":{"id":"t-2","rider":{"id":3},"driver":null,"status":"REQUESTED"},"#
            + #""offer":{"distance":412,"eta":78,"expires":"2026-11-25T12:00:15.000000Z","expires_in":15,"round":2},"seq":1,"type":"echo.message"}"#
        #expect(HubFrame.parse(offer) == .trip(.init(id: "t-2", seq: 1, status: "REQUESTED", riderID: 3, driverID: nil, pickUp: nil, dropOff: nil, offerRound: 2)))
        let noDriver = #"{"data":{"cancel_reason":"no_driver_found","id":"t-2","rider":{"id":3},"status":"CANCELED"},"seq":5,"type":"echo.message"}"#
        #expect(
            HubFrame.parse(noDriver)
                == .trip(.init(id: "t-2", seq: 5, status: "CANCELED", riderID: 3, driverID: nil, pickUp: nil, dropOff: nil, cancelReason: "no_driver_found"))
        )
        #expect(HubFrame.parse(#"{"data":{"reason":"expired","trip_id":"t-2"},"type":"trip.offer_withdrawn"}"#) == .offerWithdrawn(tripID: "t-2", reason: "expired"))
        #expect(HubFrame.parse(#"{"data":{"radius":2000,"round":2,"trip_id":"t-2"},"seq":4,"type":"trip.searching"}"#) == .searching(tripID: "t-2", round: 2, seq: 4))
        #expect(HubFrame.parse(ClientFrames.declineTrip("t-2")) == .other)
    }

    @Test("drivers follow the streets and arrive where they were sent")
    func cityRoutes() throws {
        let city = CityModel(side: 1_000)
        var vehicle = Vehicle(at: .init(column: 0, row: 0), in: city)
        vehicle.drive(to: .init(column: 2, row: 1), in: city)
        vehicle.advance(300, in: city)
        #expect(vehicle.position == .init(x: 300, y: 0))
        #expect(vehicle.heading == 90)
        vehicle.advance(150, in: city)
        #expect(vehicle.position == .init(x: 400, y: 50))
        #expect(vehicle.heading == 0)
        vehicle.advance(1_000, in: city)
        #expect(vehicle.hasArrived)
        #expect(vehicle.position == city.position(of: .init(column: 2, row: 1)))
        #expect(try LoadTestSettings.sourceAddresses("127.0.0.2-127.0.0.4,127.0.1.1") == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.1.1"])
    }
}
