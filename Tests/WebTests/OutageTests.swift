import Foundation
import HubLauncher
import Testing
import TestSupport

/// PostgreSQL going away, at start and while running: the hub keeps serving what it can,
/// says why on /readyz, and once the database is back every change reaches it.
@Suite("Database outages", MachineLoad.shared, .enabled(if: TestDatabases.serverURL != nil, "needs PostgreSQL (scripts/test starts one)"), .timeLimit(.minutes(4)))
struct OutageTests {
    static func readiness(_ hub: LiveHub) async throws -> (status: Int, body: [String: Any]) {
        let response = try await hub.request("/readyz")
        return (Int(response.status.code), try parseJSONObject(String(buffer: response.body)))
    }

    static func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<300 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting until \(what)")
    }

    @Test("changes made while PostgreSQL is down all reach it once it is back, and survive a crash")
    func outageWhileRunning() async throws {
        try await PrivateCluster.with { cluster in try await RestartTests.withDirectory { directory in
            let arguments = ["--database-url", cluster.url]
            let first = try await TestHub.process(directory: directory, arguments: arguments)
            let ids = try await first.withHub { hub in
                let ids = try await RestartTests.populate(hub)
                try await RestartTests.waitForSnapshot(hub)
                try await cluster.pause()
                // The hub keeps serving: a new user, a new trip, and the taken trip moves on.
                _ = try await hub.account("during-outage@example.com")
                let riderSocket = try await hub.connect(ids.rider)
                let newTrip = try #require(try await hub.requestTrip(ids.rider, on: riderSocket, from: "E", to: "F")["id"] as? String)
                let driverSocket = try await hub.connect(ids.driver)
                driverSocket.send(["type": "update.trip", "data": ["id": ids.taken, "status": "IN_PROGRESS"]])
                _ = try await driverSocket.receiveJSON()
                try await Self.waitUntil("/readyz reports the failing snapshots") {
                    try await Self.readiness(hub).body["last_error"] != nil
                }
                let metrics = String(buffer: try await hub.request("/metrics").body)
                #expect(!metrics.contains("taxihub_snapshot_consecutive_failures 0"))
                try await cluster.resume()
                try await Self.waitUntil("the pending changes are flushed") {
                    try await Self.readiness(hub).body["pending_changes"] as? String == "0"
                }
                await riderSocket.close()
                await driverSocket.close()
                return (ids.taken, newTrip)
            }
            try await first.stop(signal: SIGKILL)
            let second = try await TestHub.process(directory: directory, arguments: arguments)
            try await second.withHub { hub in
                _ = try await hub.logIn("during-outage@example.com")
                let rider = try await hub.logIn("rider@example.com")
                let trips = try parseJSONArray(String(buffer: try await hub.request("/api/trip/", token: rider.access).body))
                let statuses = Dictionary(uniqueKeysWithValues: trips.compactMap { trip in
                    (trip["id"] as? String).map { ($0, trip["status"] as? String) }
                })
                #expect(statuses[ids.0] == "IN_PROGRESS")
                #expect(statuses[ids.1] == "REQUESTED")
            }
            try await second.stop()
        } }
    }

    @Test("a hub started while PostgreSQL is down says why, retries, and serves once it is up")
    func outageAtStart() async throws {
        try await PrivateCluster.with { cluster in
        try await cluster.pause()
        try await RestartTests.withDirectory { directory in
            let hubProcess = try await TestHub.process(directory: directory, arguments: ["--database-url", cluster.url])
            try await hubProcess.withHub { hub in
                let loading = try await Self.readiness(hub)
                #expect(loading.status == 503)
                #expect(loading.body["status"] as? String == "loading")
                #expect(loading.body["last_error"] != nil)
                #expect(try await hub.request("/api/trip/").status == .serviceUnavailable)
                await #expect(throws: TestSocket.Refused.self) { try await TestSocket.connect(port: hub.port, token: "any") }
                try await cluster.resume()
                try await Self.waitUntil("the hub has loaded its state") { try await Self.readiness(hub).status == 200 }
                let rider = try await hub.account("rider@example.com")
                let socket = try await hub.connect(rider)
                _ = try await hub.requestTrip(rider, on: socket)
                await socket.close()
            }
            try await hubProcess.stop()
        }
        }
    }
}
