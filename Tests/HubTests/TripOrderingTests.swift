import Foundation
import Testing

@testable import Hub
import TestSupport

@Suite("Per-trip ordering while many trips change at once", MachineLoad.shared)
struct TripOrderingTests {
    static let tripCount = 200
    static let hammerTasks = 8
    static let hammerAttemptsPerTask = 500
    static let path: [TripStatus] = [.started, .inProgress, .completed]

    /// One trip of the test with the people and sockets around it.
    struct Scenario: Sendable {
        let tripID: UUID
        let rider: Principal
        let driver: Principal
        let riderMailbox: TestMailbox
        let driverMailbox = TestMailbox()
    }

    /// Updates that must always be refused, whatever state the trip is in.
    enum Junk: CaseIterable {
        case riderMovesOwnTrip, otherRiderMovesTrip, otherDriverMovesBack, ownDriverMovesBack, driverSpoofsDriverID

        func attempt(on scenario: Scenario, among all: [Scenario]) -> (Principal, TripUpdate, Set<HubError.Code>) {
            var someoneElse = all.randomElement()!
            while someoneElse.tripID == scenario.tripID { someoneElse = all.randomElement()! }
            switch self {
            case .riderMovesOwnTrip:
                return (scenario.rider, TripUpdate(status: .completed, riderID: scenario.rider.userID), [.forbidden])
            case .otherRiderMovesTrip:
                return (someoneElse.rider, TripUpdate(status: .inProgress), [.forbidden])
            case .otherDriverMovesBack:
                // Unassigned: not a forward move. Assigned: taken by someone else.
                return (
                    someoneElse.driver, TripUpdate(status: .requested, driverID: someoneElse.driver.userID),
                    [.invalidTransition, .tripTaken]
                )
            case .ownDriverMovesBack:
                return (scenario.driver, TripUpdate(status: .requested, driverID: scenario.driver.userID), [.invalidTransition])
            case .driverSpoofsDriverID:
                return (scenario.driver, TripUpdate(status: .completed, driverID: someoneElse.driver.userID), [.forbidden])
            }
        }
    }

    @Test("200 trips driven to COMPLETED at once, while junk hammers them, lose and reorder no update")
    func noLostOrReorderedUpdates() async throws {
        let hub = Hub()
        var scenarios: [Scenario] = []
        for n in 0..<Self.tripCount {
            let rider = try Fixture.user(hub.users, "rider\(n)", .rider)
            let driver = try Fixture.user(hub.users, "driver\(n)", .driver)
            let mailbox = TestMailbox()
            let view = try await hub.createTrip(Fixture.request, by: rider, from: mailbox)
            scenarios.append(Scenario(tripID: view.trip.id, rider: rider, driver: driver, riderMailbox: mailbox))
        }
        let all = scenarios
        let junkAccepted = Counter()
        let junkWrongCode = Counter()
        let statusWentBack = Counter()
        let hammerMailbox = TestMailbox()

        let readers = all.prefix(20)
        let gate = StartingGate()
        await withTaskGroup(of: Void.self) { group in
            for scenario in all {
                group.addTask {
                    await gate.wait()
                    for status in Self.path {
                        let update = TripUpdate(
                            status: status, riderID: scenario.rider.userID, driverID: scenario.driver.userID
                        )
                        let result = await outcome { () async throws(HubError) -> TripView in
                            try await hub.updateTrip(
                                id: scenario.tripID, update, by: scenario.driver, from: scenario.driverMailbox
                            )
                        }
                        switch result {
                        case .success(let view):
                            #expect(view.trip.status == status)
                            // Fan-out happens inside the change: by the time the update returns,
                            // the sender's and the rider's sockets already hold it, as the last event.
                            #expect(scenario.driverMailbox.trips.last == view)
                            #expect(scenario.riderMailbox.trips.last == view)
                        case .failure(let error):
                            Issue.record("driver's move to \(status) was refused: \(error.code) \(error.message)")
                        }
                    }
                }
            }
            for _ in 0..<Self.hammerTasks {
                group.addTask {
                    await gate.wait()
                    for _ in 0..<Self.hammerAttemptsPerTask {
                        let target = all.randomElement()!
                        let (sender, update, allowed) = Junk.allCases.randomElement()!.attempt(on: target, among: all)
                        let result = await outcome { () async throws(HubError) -> TripView in
                            try await hub.updateTrip(id: target.tripID, update, by: sender, from: hammerMailbox)
                        }
                        switch result {
                        case .success: junkAccepted.increment()
                        case .failure(let error) where !allowed.contains(error.code): junkWrongCode.increment()
                        case .failure: break
                        }
                    }
                }
            }
            // Readers: the index never shows a trip going back.
            for scenario in readers {
                group.addTask {
                    await gate.wait()
                    var seen = TripStatus.requested
                    for _ in 0..<10_000 {
                        guard let status = hub.index.trip(id: scenario.tripID)?.status else { break }
                        if status < seen { statusWentBack.increment() }
                        seen = status
                        if status == .completed { break }
                        await Task.yield()
                    }
                }
            }
            await gate.open(whenWaiting: all.count + Self.hammerTasks + readers.count)
        }

        #expect(junkAccepted.count == 0)
        #expect(junkWrongCode.count == 0)
        #expect(statusWentBack.count == 0)
        #expect(hammerMailbox.events.isEmpty, "a refused sender was sent a trip")

        let drained = hub.changes.drain()
        #expect(drained.trips.count == Self.tripCount)
        #expect(drained.users.count == 2 * Self.tripCount)
        #expect(hub.changes.pendingCount == 0)
        #expect(hub.index.countsByStatus() == [.completed: Self.tripCount])
        #expect(hub.index.requestedTrips().isEmpty)

        for scenario in scenarios {
            let riderViews = scenario.riderMailbox.trips
            #expect(riderViews.map(\.trip.status) == [.requested] + Self.path, "trip \(scenario.tripID)")
            #expect(riderViews.allSatisfy { $0.trip.id == scenario.tripID })
            #expect(riderViews.allSatisfy { $0.rider?.id == scenario.rider.userID })
            #expect(riderViews.dropFirst().allSatisfy { $0.driver?.id == scenario.driver.userID })
            let stamps = riderViews.map(\.trip.updated)
            #expect(stamps == stamps.sorted(), "updated went back on trip \(scenario.tripID)")
            #expect(Set(riderViews.map(\.trip.created)).count == 1)

            #expect(scenario.driverMailbox.statuses == Self.path)

            let final = try #require(riderViews.last?.trip)
            #expect(final.status == .completed)
            #expect(final.driverID == scenario.driver.userID)
            #expect(drained.trips[scenario.tripID] == final)
            #expect(hub.index.trip(id: scenario.tripID) == final)
            #expect(await hub.tripActor(id: scenario.tripID)?.current == final)
            #expect(hub.index.trips(involving: scenario.driver.userID) == [final])
            #expect(hub.index.trips(involving: scenario.rider.userID) == [final])
        }
    }
}
