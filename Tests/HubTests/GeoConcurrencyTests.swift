import Foundation
import Testing

@testable import Hub
import TestSupport

@Suite("Thousands of drivers moving while trips are requested, raced for and tracked", MachineLoad.shared)
struct GeoConcurrencyTests {
    static let driverCount = 2_000
    static let movesPerDriver = 20
    static let tripCount = 50
    static let locationsPerTrip = 30

    /// A small random walk around a city centre with 200 m cells, so drivers cross borders often.
    static let centre = GeoPoint(lat: 52.52, lng: 13.405)

    static func walk(driver: Int, step: Int) -> GeoPoint {
        var generator = SplitMix(seed: UInt64(driver * 1_000 + step))
        return GeoPoint(
            lat: centre.lat + Double(generator.next() % 2_000) * 1e-5 - 0.01,
            lng: centre.lng + Double(generator.next() % 3_000) * 1e-5 - 0.015
        )
    }

    @Test("no driver is ever in two cells or missing, one winner per trip, each rider sees its driver in order")
    func driversTripsAndTracks() async throws {
        var settings = Hub.Settings()
        settings.grid = CellGrid(cellSize: 200)
        settings.dispatch = DispatchPolicy(initialRadius: 200, maxRadius: 5_000, driverCount: 25)
        let hub = Hub(settings: settings)
        var connected: [FanOutTests.Connection] = []
        for n in 0..<Self.driverCount {
            let driver = await FanOutTests.connect(hub, try Fixture.user(hub.users, "driver\(n)", .driver))
            try await hub.recordAndSettle(LocationFix(point: Self.walk(driver: n, step: 0), timestamp: .now()), by: driver.principal, from: driver.mailbox)
            connected.append(driver)
        }
        let drivers = connected
        var riders: [FanOutTests.Connection] = []
        for n in 0..<Self.tripCount {
            riders.append(await FanOutTests.connect(hub, try Fixture.user(hub.users, "rider\(n)", .rider)))
        }

        // Movers and a membership checker run while riders request trips and drivers race for them.
        let violations = Counter()
        let checking = Task {
            while !Task.isCancelled {
                let membership = hub.drivers.cellMembership()
                let all = membership.values.flatMap { $0 }
                if Set(all).count != all.count || all.count != Self.driverCount { violations.increment() }
                await Task.yield()
            }
        }
        let winners = try await withThrowingTaskGroup(of: Int?.self) { group in
            for (n, driver) in drivers.enumerated() {
                group.addTask {
                    for step in 1...Self.movesPerDriver {
                        let fix = LocationFix(point: Self.walk(driver: n, step: step), timestamp: .now())
                        try await hub.recordAndSettle(fix, by: driver.principal, from: driver.mailbox)
                    }
                    return nil
                }
            }
            for rider in riders {
                group.addTask { [drivers] in
                    let request = TripRequest(pickUpAddress: "A", dropOffAddress: "B", pickUpLocation: Self.centre)
                    let trip = try await hub.createTrip(request, by: rider.principal, from: rider.mailbox).trip.id
                    return await Self.race(hub, for: trip, among: drivers)
                }
            }
            return try await group.reduce(into: [Int]()) { if let winners = $1 { $0.append(winners) } }
        }
        checking.cancel()
        _ = await checking.value
        #expect(violations.count == 0)

        // At most one winner per trip, and at most one trip per driver: all pick-ups are at the
        // centre, so later trips may find every alerted driver already busy (refused: forbidden).
        #expect(winners.count == Self.tripCount && winners.allSatisfy { $0 <= 1 })
        #expect(winners.reduce(0, +) >= Self.tripCount / 2)
        var tripsByDriver: [Int: Int] = [:]
        for rider in riders {
            guard let view = rider.mailbox.trips.last, let driver = view.trip.driverID else { continue }
            tripsByDriver[driver, default: 0] += 1
        }
        #expect(tripsByDriver.values.allSatisfy { $0 == 1 })
        #expect(tripsByDriver.count == winners.reduce(0, +))

        // Every driver ends in the cell of its last position, and in no other.
        let membership = hub.drivers.cellMembership()
        for (n, driver) in drivers.enumerated() {
            let cell = settings.grid.cell(containing: Self.walk(driver: n, step: Self.movesPerDriver))
            #expect(membership[cell]?.contains(driver.mailbox.connectionID) == true)
        }
        #expect(membership.values.map(\.count).reduce(0, +) == Self.driverCount)

        // The winners stream concurrently; each rider sees its own driver's fixes in the order sent.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for driver in drivers {
                guard hub.drivers.activeTrip(of: driver.principal.userID) != nil else { continue }
                group.addTask {
                    for step in 0..<Self.locationsPerTrip {
                        let point = GeoPoint(lat: Self.centre.lat + Double(step) * 1e-4, lng: Self.centre.lng)
                        try await hub.recordAndSettle(LocationFix(point: point, timestamp: .now()), by: driver.principal, from: driver.mailbox)
                    }
                }
            }
            try await group.waitForAll()
        }
        for rider in riders where rider.mailbox.trips.last?.trip.driverID != nil {
            let locations = rider.mailbox.locations
            #expect(locations.count == Self.locationsPerTrip)
            #expect(locations.map(\.fix.point.lat) == (0..<Self.locationsPerTrip).map { Self.centre.lat + Double($0) * 1e-4 })
            let seqs = locations.map(\.seq)
            #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $0 < $1 })
        }
    }

    /// Every driver alerted of `trip` tries to accept it at once; returns how many succeeded.
    static func race(_ hub: Hub, for trip: UUID, among drivers: [FanOutTests.Connection]) async -> Int {
        let alerted = drivers.filter { driver in driver.mailbox.trips.contains { $0.trip.id == trip } }
        return await withTaskGroup(of: Bool.self) { group in
            for driver in alerted {
                group.addTask {
                    let result = await outcome { () async throws(HubError) in
                        try await hub.updateTrip(id: trip, TripUpdate(status: .started), by: driver.principal, from: driver.mailbox)
                    }
                    let expected: Set<HubError.Code> = [.tripTaken, .invalidTransition, .forbidden]
                    if case .failure(let error) = result, !expected.contains(error.code) {
                        Issue.record("unexpected refusal \(error)")
                    }
                    return (try? result.get()) != nil
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
    }
}

/// A tiny deterministic generator, so every run walks the same routes.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
