import Foundation
import Testing

@testable import Hub
import TestSupport

@Suite("Accept races through the real hub and trip actors", MachineLoad.shared)
struct AcceptRaceTests {
    static let tripCount = 100
    static let driversPerTrip = 1_000

    /// One driver's attempt to accept a trip.
    struct Attempt: Sendable {
        let driver: Principal
        let mailbox: TestMailbox
        let result: Result<TripView, HubError>
    }

    /// Every attempt made on one trip.
    struct Race: Sendable {
        let tripID: UUID
        let rider: TestMailbox
        let attempts: [Attempt]
    }

    @Test("1,000 drivers accepting one trip at once: exactly one wins, 999 get trip_taken — on 100 trips at once")
    func oneWinnerPerTrip() async throws {
        let hub = Hub()
        var trips: [(id: UUID, rider: TestMailbox)] = []
        for n in 0..<Self.tripCount {
            let mailbox = TestMailbox()
            let view = try await hub.createTrip(
                Fixture.request, by: Principal(userID: n + 1, group: .rider), from: mailbox
            )
            trips.append((view.trip.id, mailbox))
        }
        _ = hub.changes.drain()

        // Every one of the 100,000 attempts waits at the gate, then all go at once.
        let gate = StartingGate()
        let races = await withTaskGroup(of: Race.self) { group in
            for (n, trip) in trips.enumerated() {
                let firstDriverID = 100_000 + n * Self.driversPerTrip
                group.addTask {
                    Race(
                        tripID: trip.id, rider: trip.rider,
                        attempts: await Self.race(hub, tripID: trip.id, firstDriverID: firstDriverID, gate: gate)
                    )
                }
            }
            await gate.open(whenWaiting: Self.tripCount * Self.driversPerTrip)
            var races: [Race] = []
            for await race in group { races.append(race) }
            return races
        }

        #expect(races.count == Self.tripCount)
        let persisted = hub.changes.drain()
        for race in races {
            let winners = race.attempts.filter { (try? $0.result.get()) != nil }
            let losers = race.attempts.compactMap { attempt -> (Attempt, HubError)? in
                guard case .failure(let error) = attempt.result else { return nil }
                return (attempt, error)
            }
            #expect(race.attempts.count == Self.driversPerTrip)
            try #require(winners.count == 1, "trip \(race.tripID) had \(winners.count) winners")
            #expect(losers.count == Self.driversPerTrip - 1)
            #expect(losers.allSatisfy { $0.1.code == .tripTaken })
            #expect(losers.allSatisfy { $0.0.mailbox.events.isEmpty }, "a loser was sent the trip")

            let winner = winners[0]
            let view = try winner.result.get()
            #expect(view.trip.driverID == winner.driver.userID)
            #expect(view.trip.status == .started)

            let actor = try #require(hub.tripActor(id: race.tripID))
            let live = await actor.current
            #expect(live.driverID == winner.driver.userID)
            #expect(live.status == .started)
            #expect(await actor.memberCount == 2)
            #expect(hub.index.trip(id: race.tripID) == live)
            #expect(persisted.trips[race.tripID] == live)

            #expect(winner.mailbox.trips.map(\.trip) == [live])
            #expect(race.rider.statuses == [.requested, .started])
            #expect(race.rider.trips.last?.trip.driverID == winner.driver.userID)
        }
        #expect(hub.index.countsByStatus() == [.started: Self.tripCount])
        #expect(hub.index.requestedTrips().isEmpty)
    }

    /// Every driver of a block of ids tries, at the same time, to accept the trip.
    static func race(_ hub: Hub, tripID: UUID, firstDriverID: Int, gate: StartingGate) async -> [Attempt] {
        await withTaskGroup(of: Attempt.self) { group in
            for k in 0..<driversPerTrip {
                let driver = Principal(userID: firstDriverID + k, group: .driver)
                group.addTask {
                    let mailbox = TestMailbox()
                    await gate.wait()
                    let result = await outcome { () async throws(HubError) -> TripView in
                        try await hub.updateTrip(
                            id: tripID, TripUpdate(status: .started, driverID: driver.userID), by: driver, from: mailbox
                        )
                    }
                    return Attempt(driver: driver, mailbox: mailbox, result: result)
                }
            }
            var attempts: [Attempt] = []
            for await attempt in group { attempts.append(attempt) }
            return attempts
        }
    }
}
