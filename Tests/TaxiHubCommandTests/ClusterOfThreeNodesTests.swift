import Foundation
import HubLauncher
import TestSupport
import Testing

/// Three `taxi-hub serve` processes acting as one hub over a real `nats-server` and one real
/// PostgreSQL database: accept races across nodes, GPS from one node to another, and
/// a node killed with SIGKILL whose trips another node takes over.
@Suite(
    "Cluster of three nodes", .serialized, MachineLoad.exclusive,
    .enabled(if: TestDatabases.serverURL != nil && FileManager.default.isExecutableFile(atPath: NATSTestServer.executable), "needs TAXI_HUB_TEST_DATABASE_URL and nats-server")
)
struct ClusterTests {
    /// Three nodes on loopback sharing a NATS server and a database.
    struct TestCluster: Sendable {
        let nats: NATSTestServer
        let nodes: [TestHub]
        let directory: URL
        let databaseURL: String

        /// Long enough that a node's local deadline (lease − 10 %) survives renewals slowed down by a
        /// busy machine (the debug build, the load generator's suites), short enough for takeovers.
        static let lease = "3"

        static func arguments(node: Int, nats: String, databaseURL: String) -> [String] {
            [
                "--database-url", databaseURL, "--nats-url", nats, "--node-id", "node-\(node)", "--cluster-lease", lease,
                "--location-rate-limit", "1000", "--message-rate-limit", "1000", 
            ]
        }

        /// Runs `body` on a fresh cluster of `count` nodes, stopped afterwards whatever happens.
        static func with(_ count: Int = 3, _ body: (TestCluster) async throws -> Void) async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-cluster-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let nats = try await NATSTestServer.start()
            let databaseURL = try await TestDatabases.create()
            var nodes: [TestHub] = []
            do {
                for node in 0..<count {
                    nodes.append(
                        try await TestHub.process(
                            directory: directory.appendingPathComponent("node-\(node)"),
                            arguments: arguments(node: node, nats: nats.url, databaseURL: databaseURL)
                        )
                    )
                }
                try await body(TestCluster(nats: nats, nodes: nodes, directory: directory, databaseURL: databaseURL))
            } catch {
                // What each node logged is the first thing to read when a cluster test fails.
                for (number, node) in nodes.enumerated() {
                    print("---- node-\(number) log (last 40 lines) ----\n" + node.log.split(separator: "\n").suffix(40).joined(separator: "\n"))
                }
                for node in nodes { _ = try? await node.stop(signal: SIGKILL) }
                await nats.stop()
                throw error
            }
            for node in nodes { _ = try? await node.stop(signal: SIGKILL) }
            await nats.stop()
        }

        func directory(_ node: Int) -> URL { directory.appendingPathComponent("node-\(node)") }

        /// Opens a socket to `node`, waiting (briefly) for the node to have heard of a user
        /// signed up on another one.
        func connect(_ account: LiveHub.Account, to node: Int) async throws -> TestSocket {
            try await Self.connect(account, port: nodes[node].port)
        }

        static func connect(_ account: LiveHub.Account, port: Int) async throws -> TestSocket {
            for _ in 0..<100 {
                if let socket = try? await TestSocket.connect(port: port, token: account.access) { return socket }
                try await Task.sleep(for: .milliseconds(100))
            }
            return try await TestSocket.connect(port: port, token: account.access)
        }
    }

    /// The next frame of `socket` that `matches`, skipping others.
    static func next(_ socket: TestSocket, where matches: ([String: Any]) -> Bool) async throws -> [String: Any] {
        for _ in 0..<1000 {
            let frame = try await socket.receiveJSON()
            if matches(frame) { return frame }
        }
        throw TestSocket.TimedOut()
    }

    /// The next trip state of `socket` for which `matches` holds. (Awaited outside `#require`:
    /// the macro may evaluate its expression again, which would read a second frame.)
    static func nextTrip(_ socket: TestSocket, where matches: @escaping ([String: Any]) -> Bool) async throws -> [String: Any] {
        let frame = try await next(socket) { trip($0).map(matches) ?? false }
        return trip(frame)!
    }

    static func trip(_ frame: [String: Any]) -> [String: Any]? {
        frame["type"] as? String == "echo.message" ? frame["data"] as? [String: Any] : nil
    }

    @Test("an accept race between drivers on three nodes has exactly one winner, 500 times over")
    func acceptRace() async throws {
        try await TestCluster.with { cluster in
            try await cluster.nodes[0].withHub { hub in
                var riders: [LiveHub.Account] = []
                var drivers: [LiveHub.Account] = []
                for n in 0..<3 {
                    riders.append(try await hub.account("rider\(n)@example.com"))
                    drivers.append(try await hub.account("driver\(n)@example.com", group: "driver"))
                }
                var riderSockets: [TestSocket] = []
                var driverSockets: [TestSocket] = []
                for n in 0..<3 {
                    riderSockets.append(try await cluster.connect(riders[n], to: n))
                    driverSockets.append(try await cluster.connect(drivers[n], to: n))
                }
                // Give the connection notices time to reach every node.
                try await Task.sleep(for: .milliseconds(500))
                var wins = [0, 0, 0]
                for round in 0..<500 {
                    // The trip is owned by the node its rider is on: each node owns a third of them.
                    let owner = round % 3
                    riderSockets[owner].send([
                        "type": "create.trip", "data": ["pick_up_address": "A \(round)", "drop_off_address": "B", "rider": riders[owner].id],
                    ])
                    let created = try await Self.nextTrip(riderSockets[owner]) { $0["status"] as? String == "REQUESTED" }
                    let id = try #require(created["id"] as? String)
                    for n in 0..<3 {
                        driverSockets[n].send(["type": "update.trip", "data": ["id": id, "status": "STARTED", "driver": drivers[n].id]])
                    }
                    var winners: [Int] = []
                    for n in 0..<3 {
                        // Every driver was offered the trip (no pick-up point: all are alerted), and the
                        // losers see it taken: the answer is an error or the trip started by this driver.
                        let answer = try await Self.next(driverSockets[n]) { frame in
                            guard let trip = Self.trip(frame) else { return frame["type"] as? String == "error" }
                            return trip["id"] as? String == id && (trip["driver"] as? [String: Any])?["id"] as? Int == drivers[n].id
                        }
                        if let trip = Self.trip(answer) {
                            #expect(trip["status"] as? String == "STARTED")
                            #expect((trip["driver"] as? [String: Any])?["id"] as? Int == drivers[n].id)
                            winners.append(n)
                        } else {
                            let code = (answer["data"] as? [String: Any])?["code"] as? String
                            #expect(code == "trip_taken" || code == "invalid_transition", "round \(round): driver \(n) got \(answer)")
                        }
                    }
                    try #require(winners.count == 1, "round \(round) (owner node-\(owner)): winners \(winners)")
                    wins[winners[0]] += 1
                    // The rider sees the winner, then frees it for the next round.
                    let started = try await Self.nextTrip(riderSockets[owner]) { $0["id"] as? String == id }
                    #expect((started["driver"] as? [String: Any])?["id"] as? Int == drivers[winners[0]].id)
                    riderSockets[owner].send(["type": "cancel.trip", "data": ["id": id]])
                    _ = try await Self.next(driverSockets[winners[0]]) { Self.trip($0)?["status"] as? String == "CANCELED" }
                    _ = try await Self.next(riderSockets[owner]) { Self.trip($0)?["status"] as? String == "CANCELED" }
                }
                // Every node's driver won some: the race is a real one across nodes.
                #expect(wins.allSatisfy { $0 > 0 }, "wins per node: \(wins)")
                for socket in riderSockets + driverSockets { await socket.close() }
            }
        }
    }

    @Test("a rider on one node sees the GPS of a driver on another, in order, with growing seq")
    func gpsAcrossNodes() async throws {
        try await TestCluster.with { cluster in
            try await cluster.nodes[0].withHub { hub in
                let rider = try await hub.account("rider@example.com")
                let driver = try await hub.account("driver@example.com", group: "driver")
                let riderSocket = try await cluster.connect(rider, to: 0)
                let driverSocket = try await cluster.connect(driver, to: 1)
                // A driver on node 1 near the pick-up is offered a trip requested on node 0.
                driverSocket.send(["type": "update.location", "data": ["lat": 40.75, "lng": -73.99]])
                try await Task.sleep(for: .milliseconds(1_500))
                riderSocket.send([
                    "type": "create.trip",
                    "data": [
                        "pick_up_address": "A", "drop_off_address": "B", "rider": rider.id,
                        "pick_up_location": ["lat": 40.751, "lng": -73.991],
                    ],
                ])
                let offer = try await Self.nextTrip(driverSocket) { $0["status"] as? String == "REQUESTED" }
                let id = try #require(offer["id"] as? String)
                driverSocket.send(["type": "update.trip", "data": ["id": id, "status": "STARTED", "driver": driver.id]])
                _ = try await Self.next(driverSocket) { Self.trip($0)?["status"] as? String == "STARTED" }
                _ = try await Self.next(riderSocket) { Self.trip($0)?["status"] as? String == "STARTED" }
                let fixes = 300
                for n in 1...fixes {
                    driverSocket.send(["type": "update.location", "data": ["lat": 40.75 + Double(n) / 8192, "lng": -73.99]])
                    if n % 50 == 0 { try await Task.sleep(for: .milliseconds(20)) }
                }
                var seqs: [Int] = []
                var latitudes: [Double] = []
                while latitudes.last != 40.75 + Double(fixes) / 8192 {
                    let frame = try await Self.next(riderSocket) { $0["type"] as? String == "trip.location" }
                    let data = try #require(frame["data"] as? [String: Any])
                    #expect(data["trip_id"] as? String == id)
                    seqs.append(try #require(frame["seq"] as? Int))
                    latitudes.append(try #require(data["lat"] as? Double))
                }
                #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $0 < $1 }, "seq must grow: \(seqs)")
                #expect(zip(latitudes, latitudes.dropFirst()).allSatisfy { $0 < $1 }, "fixes must arrive in the order sent")
                // A rider that keeps up gets every fix (coalescing only drops fixes for a slow reader).
                #expect(latitudes.count == fixes, "got \(latitudes.count) of \(fixes) fixes")
                await riderSocket.close()
                await driverSocket.close()
            }
        }
    }

    @Test("SIGKILL of a trip's owner hands the trip to a survivor; a resumed rider misses nothing snapshotted")
    func ownerKilled() async throws {
        try await TestCluster.with { cluster in
            let (rider, driver, id, lastSeen) = try await cluster.nodes[1].withHub { hub in
                let rider = try await hub.account("rider@example.com")
                let driver = try await hub.account("driver@example.com", group: "driver")
                let riderSocket = try await cluster.connect(rider, to: 0)
                let driverSocket = try await cluster.connect(driver, to: 1)
                try await Task.sleep(for: .milliseconds(300))
                let trip = try await hub.requestTrip(rider, on: riderSocket)
                let id = try #require(trip["id"] as? String)
                driverSocket.send(["type": "update.trip", "data": ["id": id, "status": "STARTED", "driver": driver.id]])
                _ = try await Self.next(driverSocket) { Self.trip($0)?["status"] as? String == "STARTED" }
                var lastSeen = 0
                for n in 1...20 {
                    driverSocket.send(["type": "update.location", "data": ["lat": 40.75 + Double(n) / 8192, "lng": -73.99]])
                }
                while true {
                    let frame = try await Self.next(riderSocket) { $0["type"] as? String == "trip.location" || Self.trip($0) != nil }
                    lastSeen = max(lastSeen, frame["seq"] as? Int ?? 0)
                    if (frame["data"] as? [String: Any])?["lat"] as? Double == 40.75 + 20.0 / 8192 { break }
                }
                await driverSocket.close()
                await riderSocket.close()
                return (rider, driver, id, lastSeen)
            }
            // Everything the rider saw is snapshotted (0.2 s interval) before the owner dies.
            try await Task.sleep(for: .seconds(1))
            try await cluster.nodes[0].stop(signal: SIGKILL)

            // The rider reconnects to another node and resumes; until a survivor has taken the
            // trip over (one lease, 1.5 s), the trip is `unavailable`.
            let riderSocket = try await TestCluster.connect(rider, port: cluster.nodes[2].port)
            let driverSocket = try await TestCluster.connect(driver, port: cluster.nodes[1].port)
            var state: [String: Any]?
            for _ in 0..<100 where state == nil {
                riderSocket.send(["type": "resume", "data": ["trips": [id: lastSeen]]])
                let frame = try await Self.next(riderSocket) { $0["type"] as? String == "error" || Self.trip($0)?["id"] as? String == id }
                if let trip = Self.trip(frame) {
                    state = trip
                } else {
                    #expect((frame["data"] as? [String: Any])?["code"] as? String == "unavailable", "\(frame)")
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            let resumed = try #require(state, "the trip was never taken over")
            #expect(resumed["status"] as? String == "STARTED")
            #expect((resumed["driver"] as? [String: Any])?["id"] as? Int == driver.id)
            // The survivor carries on: the driver's next fixes reach the rider, numbered after
            // everything the rider saw from the dead node.
            driverSocket.send(["type": "update.location", "data": ["lat": 41.0, "lng": -73.99]])
            let moved = try await Self.next(riderSocket) { $0["type"] as? String == "trip.location" }
            #expect((moved["data"] as? [String: Any])?["lat"] as? Double == 41.0)
            #expect((moved["seq"] as? Int ?? 0) > lastSeen)
            // The store records a survivor as the trip's owner.
            let owner = try await ChildProcess.run(
                TestDatabases.psql, ["-X", "-qAt", "-d", cluster.databaseURL, "-c", "SELECT owner_node FROM trips WHERE id = '\(id)'"]
            )
            #expect(["node-1", "node-2"].contains(owner.trimmingCharacters(in: .whitespacesAndNewlines)), "owner: \(owner)")
            await riderSocket.close()
            await driverSocket.close()
        }
    }

    @Test("with NATS down, a node serves its own clients and says it is degraded; it recovers when NATS returns")
    func natsDown() async throws {
        try await TestCluster.with(2) { cluster in
            try await cluster.nodes[0].withHub { hub in
                let rider = try await hub.account("rider@example.com")
                let driver = try await hub.account("driver@example.com", group: "driver")
                await cluster.nats.stop()
                var ready: [String: Any] = [:]
                for _ in 0..<100 {
                    ready = try parseJSONObject(String(buffer: try await hub.request("/readyz").body))
                    if ready["status"] as? String == "degraded" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(ready["status"] as? String == "degraded", "\(ready)")
                #expect(ready["cluster_nats"] as? String == "disconnected")
                let metrics = String(buffer: try await hub.request("/metrics").body)
                #expect(metrics.contains("taxihub_cluster_nats_connected 0"))
                #expect(metrics.contains("taxihub_cluster_degraded 1"))
                // A trip whose rider and driver are both on this node works as on one hub.
                let riderSocket = try await cluster.connect(rider, to: 0)
                let driverSocket = try await cluster.connect(driver, to: 0)
                let trip = try await hub.requestTrip(rider, on: riderSocket)
                let id = try #require(trip["id"] as? String)
                driverSocket.send(["type": "update.trip", "data": ["id": id, "status": "STARTED", "driver": driver.id]])
                let started = try await Self.nextTrip(riderSocket) { $0["status"] as? String == "STARTED" }
                #expect((started["driver"] as? [String: Any])?["id"] as? Int == driver.id)
                try await cluster.nats.start()
                for _ in 0..<100 {
                    ready = try parseJSONObject(String(buffer: try await hub.request("/readyz").body))
                    if ready["status"] as? String == "ready" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(ready["status"] as? String == "ready", "\(ready)")
                await riderSocket.close()
                await driverSocket.close()
            }
        }
    }
}
