import Foundation
import HubLauncher
import NIOWebSocket
import Testing
import TestSupport

/// State written by one `taxi-hub` process is there when the next one starts on the same
/// data folder: after a graceful stop, after SIGKILL following a snapshot, and after SIGKILL
/// before any snapshot (from the journal).
@Suite("Restart and durability", MachineLoad.shared, .timeLimit(.minutes(4)))
struct RestartTests {
    static func withDirectory(_ body: (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-restart-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory)
    }

    /// Signs up a rider and a driver, requests two trips, has the driver take one; returns their ids.
    static func populate(_ hub: LiveHub) async throws -> (rider: LiveHub.Account, driver: LiveHub.Account, taken: String, open: String) {
        let rider = try await hub.account("rider@example.com")
        let driver = try await hub.account("driver@example.com", group: "driver")
        let riderSocket = try await hub.connect(rider)
        let taken = try #require(try await hub.requestTrip(rider, on: riderSocket, from: "A", to: "B")["id"] as? String)
        let open = try #require(try await hub.requestTrip(rider, on: riderSocket, from: "C", to: "D")["id"] as? String)
        let driverSocket = try await hub.connect(driver)
        driverSocket.send(["type": "update.trip", "data": ["id": taken, "status": "STARTED", "driver": driver.id]])
        _ = try await driverSocket.receiveJSON()
        await driverSocket.close()
        await riderSocket.close()
        return (rider, driver, taken, open)
    }

    /// Waits until the hub reports no pending changes, i.e. a snapshot has written everything.
    static func waitForSnapshot(_ hub: LiveHub) async throws {
        for _ in 0..<100 {
            let ready = try parseJSONObject(String(buffer: try await hub.request("/readyz").body))
            if ready["pending_changes"] as? String == "0" { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("changes never reached the store")
    }

    static func expectRestored(_ hub: LiveHub, taken: String, open: String) async throws {
        let rider = try await hub.logIn("rider@example.com")
        let driver = try await hub.logIn("driver@example.com")
        let riderAccount = LiveHub.Account(id: try #require(try jwtPayload(rider.access)["id"] as? Int), username: "rider@example.com", access: rider.access, refresh: rider.refresh)
        let driverAccount = LiveHub.Account(id: try #require(try jwtPayload(driver.access)["id"] as? Int), username: "driver@example.com", access: driver.access, refresh: driver.refresh)
        let trips = try await hub.trips(riderAccount)
        let byID = Dictionary(uniqueKeysWithValues: trips.compactMap { trip in (trip["id"] as? String).map { ($0, trip) } })
        #expect(byID.count == 2)
        #expect(byID[taken]?["status"] as? String == "STARTED")
        #expect((byID[taken]?["driver"] as? [String: Any])?["username"] as? String == "driver@example.com")
        #expect(byID[open]?["status"] as? String == "REQUESTED")
        #expect(byID[open]?["pick_up_address"] as? String == "C")
        // Restored trips are live again: the rider rejoins its group and the driver carries on.
        let riderSocket = try await hub.connect(riderAccount)
        let driverSocket = try await hub.connect(driverAccount)
        driverSocket.send(["type": "update.trip", "data": ["id": taken, "status": "COMPLETED"]])
        let update = try await riderSocket.receiveJSON()
        #expect((update["data"] as? [String: Any])?["status"] as? String == "COMPLETED")
        // New users continue the id sequence instead of reusing ids.
        let newcomer = try await hub.signUp("newcomer@example.com")
        #expect((newcomer["id"] as? Int ?? 0) > max(riderAccount.id, driverAccount.id))
        await riderSocket.close()
        await driverSocket.close()
    }

    @Test("users and trips survive a graceful stop, and open sockets are closed with 1001", arguments: StoreUnderTest.available)
    func gracefulRestart(store: StoreUnderTest) async throws {
        let storeArguments = try await store.arguments()
        try await Self.withDirectory { directory in
            let first = try await TestHub.process(directory: directory, arguments: storeArguments)
            let ids = try await first.withHub { hub in
                let ids = try await Self.populate(hub)
                let socket = try await hub.connect(ids.rider)
                return (ids.taken, ids.open, socket)
            }
            #expect(try await first.stop(signal: SIGTERM) == 0)
            let close = await ids.2.closedByServer()
            #expect(close?.closeCode == .goingAway, "\(String(describing: close)) \(first.log)")
            let second = try await TestHub.process(directory: directory, arguments: storeArguments)
            try await second.withHub { hub in
                try await Self.expectRestored(hub, taken: ids.0, open: ids.1)
            }
            try await second.stop()
        }
    }

    @Test("a SIGKILL after a snapshot loses nothing that snapshot wrote", arguments: StoreUnderTest.available)
    func crashAfterSnapshot(store: StoreUnderTest) async throws {
        _ = try await Self.killAndRestore(store) { hub in try await Self.waitForSnapshot(hub) }
    }

    @Test("a SIGKILL before any snapshot loses no acknowledged trip change or sign-up (the journal)", arguments: StoreUnderTest.available)
    func crashBeforeAnySnapshot(store: StoreUnderTest) async throws {
        // No snapshot runs in the first process's life: whatever survives came from the journal.
        let log = try await Self.killAndRestore(store, firstArguments: ["--snapshot-interval", "3600"]) { hub in
            let ready = try parseJSONObject(String(buffer: try await hub.request("/readyz").body))
            #expect(ready["pending_changes"] as? String != "0", "a snapshot ran: this test would prove nothing")
        }
        #expect(log.contains("journal replayed into the store"), "\(log)")
    }

    /// Populates a hub (with `firstArguments`), runs `beforeKill`, SIGKILLs it, and checks that a
    /// new process on the same folder has everything back; returns the new process's log.
    static func killAndRestore(
        _ store: StoreUnderTest, firstArguments: [String] = [], beforeKill: @escaping @Sendable (LiveHub) async throws -> Void
    ) async throws -> String {
        let storeArguments = try await store.arguments()
        var log = ""
        try await Self.withDirectory { directory in
            let first = try await TestHub.process(directory: directory, arguments: storeArguments + firstArguments)
            let ids = try await first.withHub { hub in
                let ids = try await Self.populate(hub)
                try await beforeKill(hub)
                return (ids.taken, ids.open)
            }
            try await first.stop(signal: SIGKILL)
            let second = try await TestHub.process(directory: directory, arguments: storeArguments)
            try await second.withHub { hub in
                try await Self.expectRestored(hub, taken: ids.0, open: ids.1)
            }
            try await second.stop()
            log = second.log
        }
        return log
    }

    @Test("finished trips stay listed after a restart, served from the store", arguments: StoreUnderTest.available)
    func finishedTripsAfterRestart(store: StoreUnderTest) async throws {
        let storeArguments = try await store.arguments()
        try await Self.withDirectory { directory in
            let first = try await TestHub.process(directory: directory, arguments: storeArguments)
            let finished = try await first.withHub { hub in
                let ids = try await Self.populate(hub)
                let driverSocket = try await hub.connect(ids.driver)
                driverSocket.send(["type": "update.trip", "data": ["id": ids.taken, "status": "COMPLETED"]])
                _ = try await driverSocket.receiveJSON()
                await driverSocket.close()
                try await Self.waitForSnapshot(hub)
                // Once written, the finished trip leaves memory but stays visible, and still refuses changes.
                let trip = try await hub.request("/api/trip/\(ids.taken)/", token: ids.rider.access)
                #expect(trip.status == .ok)
                let again = try await hub.connect(ids.driver)
                again.send(["type": "update.trip", "data": ["id": ids.taken, "status": "COMPLETED"]])
                #expect((try await again.receiveJSON()["data"] as? [String: Any])?["code"] as? String == "invalid_transition")
                await again.close()
                return ids.taken
            }
            try await first.stop()
            let second = try await TestHub.process(directory: directory, arguments: storeArguments)
            try await second.withHub { hub in
                let rider = try await hub.logIn("rider@example.com")
                let response = try await hub.request("/api/trip/\(finished)/", token: rider.access)
                #expect(response.status == .ok)
                #expect(try parseJSONObject(String(buffer: response.body))["status"] as? String == "COMPLETED")
                let list = try parseJSONArray(String(buffer: try await hub.request("/api/trip/", token: rider.access).body))
                #expect(list.contains { $0["id"] as? String == finished && $0["status"] as? String == "COMPLETED" })
                let driver = try await hub.logIn("driver@example.com")
                let driverList = try parseJSONArray(String(buffer: try await hub.request("/api/trip/", token: driver.access).body))
                #expect(driverList.contains { $0["id"] as? String == finished })
            }
            try await second.stop()
        }
    }
}
