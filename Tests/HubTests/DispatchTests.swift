import Foundation
import Synchronization
import Testing

@testable import Hub
import TestSupport

/// A clock the dispatch tests move by fractions of a second.
final class ManualClock: HubClock {
    private let micros: Mutex<Int64>

    init(_ start: Timestamp = Fixture.epoch) {
        micros = Mutex(start.microseconds)
    }

    func now() -> Timestamp { Timestamp(microseconds: micros.withLock { $0 }) }

    func advance(_ seconds: Double) {
        micros.withLock { $0 += Int64(seconds * 1_000_000) }
    }
}

extension TestMailbox {
    /// The offers received of `trip` (trips with a pick-up point), in order.
    func offers(of trip: UUID) -> [OfferTerms] {
        events.compactMap { event in
            if case .offer(let view, let terms) = event, view.trip.id == trip { terms } else { nil }
        }
    }

    /// Why each offer of `trip` this connection held ended while the trip still waited, in order.
    func withdrawals(of trip: UUID) -> [WithdrawalReason] {
        events.compactMap { event in
            if case .offerWithdrawn(let withdrawal) = event, withdrawal.tripID == trip { withdrawal.reason } else { nil }
        }
    }

    /// The notices received of `trip`, in order.
    func notices(of trip: UUID) -> [TripNotice] {
        events.compactMap { event in
            if case .notice(let notice) = event, notice.tripID == trip { notice } else { nil }
        }
    }

    func states(of trip: UUID) -> [Trip] {
        trips.map(\.trip).filter { $0.id == trip }
    }
}

/// Dispatch over the real actors with a clock the test moves (docs/protocol.md §3.3): offer rounds
/// that expire and widen, declines, late drivers, offline and stale drivers, the "no driver"
/// outcome, withdrawals, the pick-up radius, ETA and arrival, supply and demand.
@Suite("Dispatch: offer rounds, declines, availability, arrival", MachineLoad.shared)
struct DispatchTests {
    static let pickUp = GeoPoint(lat: 52.52, lng: 13.405)

    static func north(_ metres: Double) -> GeoPoint {
        GeoPoint(lat: pickUp.lat + metres / 111_195, lng: pickUp.lng)
    }

    static func settings(
        drivers: Int = 2, radius: Double = 1_000, step: Double = 1_000, maxRadius: Double = 3_000, offerTimeout: Int64 = 15,
        dispatchTimeout: Int64 = 120, pickUpRadius: Double = 150
    ) -> Hub.Settings {
        var settings = Hub.Settings()
        settings.dispatch = DispatchPolicy(initialRadius: radius, maxRadius: maxRadius, driverCount: drivers)
        settings.offers = OfferPolicy(
            radiusStep: step, offerTimeout: .seconds(offerTimeout), dispatchTimeout: .seconds(dispatchTimeout), stalePositionAfter: .seconds(30)
        )
        settings.pickUp = PickUpPolicy(arrivalRadius: 50, pickUpRadius: pickUpRadius)
        return settings
    }

    /// A hub on a manual clock, a connected rider, and drivers placed north of the pick-up.
    final class World: Sendable {
        let clock = ManualClock()
        let hub: Hub
        let rider: FanOutTests.Connection
        private let placed = Mutex<[(driver: FanOutTests.Connection, metres: Double)]>([])

        init(_ settings: Hub.Settings = DispatchTests.settings()) async throws {
            hub = Hub(settings: settings, clock: clock)
            rider = await FanOutTests.connect(hub, try Fixture.user(hub.users, "rider", .rider))
        }

        /// A new connected driver; with `metres`, it sends a fix that far north of the pick-up.
        func driver(_ name: String, at metres: Double?) async throws -> FanOutTests.Connection {
            let driver = await FanOutTests.connect(hub, try Fixture.user(hub.users, name, .driver))
            if let metres {
                try await move(driver, to: metres)
            }
            return driver
        }

        /// A fix of `driver` `metres` north of the pick-up, at the clock's time.
        func move(_ driver: FanOutTests.Connection, to metres: Double, speed: Double? = nil) async throws {
            let fix = LocationFix(point: DispatchTests.north(metres), speed: speed, timestamp: clock.now())
            try await hub.recordAndSettle(fix, by: driver.principal, from: driver.mailbox)
            placed.withLock { placed in
                placed.removeAll { $0.driver.principal == driver.principal }
                placed.append((driver, metres))
            }
        }

        /// Every placed driver sends a fresh fix where it is (so none goes stale).
        func refresh() async throws {
            for (driver, metres) in placed.withLock({ $0 }) { try await move(driver, to: metres) }
        }

        func request(withPickUp: Bool = true) async throws -> UUID {
            let request = TripRequest(pickUpAddress: "A", dropOffAddress: "B", pickUpLocation: withPickUp ? DispatchTests.pickUp : nil)
            return try await hub.createTrip(request, by: rider.principal, from: rider.mailbox).trip.id
        }

        /// Moves the clock, refreshes every driver's fix, and runs one dispatch tick.
        func tick(after seconds: Double, refreshing: Bool = true) async throws {
            clock.advance(seconds)
            if refreshing { try await refresh() }
            await hub.dispatchTick()
        }

        func accept(_ trip: UUID, by driver: FanOutTests.Connection) async throws -> TripView {
            try await hub.updateTrip(id: trip, TripUpdate(status: .started), by: driver.principal, from: driver.mailbox)
        }

        func holders(of trip: UUID) async -> [Int] {
            await hub.tripActor(id: trip)?.offerHolders ?? []
        }
    }

    @Test("offers expire; the next round goes to the next nearest drivers not yet asked, one radius step farther")
    func expiryMovesToTheNextRound() async throws {
        let world = try await World()
        var drivers: [FanOutTests.Connection] = []
        for (n, metres) in [300.0, 600, 900, 1_500, 2_500].enumerated() { drivers.append(try await world.driver("d\(n)", at: metres)) }
        let trip = try await world.request()

        // Round 1: the two nearest within 1,000 m, with distance, ETA and expiry.
        #expect(drivers.map { $0.mailbox.offers(of: trip).count } == [1, 1, 0, 0, 0])
        let terms = try #require(drivers[0].mailbox.offers(of: trip).first)
        #expect(terms.round == 1 && abs(terms.distance - 300) < 1)
        #expect(terms.eta == ETAModel().seconds(toCover: terms.distance))
        #expect(terms.expires == Timestamp(microseconds: Fixture.epoch.microseconds + 15_000_000) && terms.expiresIn == 15)
        #expect(await world.holders(of: trip) == [drivers[0], drivers[1]].map(\.principal.userID))

        // Nothing moves before the expiry.
        try await world.tick(after: 14.5)
        #expect(drivers.map { $0.mailbox.offers(of: trip).count } == [1, 1, 0, 0, 0])
        #expect(drivers[0].mailbox.withdrawals(of: trip).isEmpty)

        // Expired: both are told; round 2 reaches 2,000 m and asks 900 m and 1,500 m.
        try await world.tick(after: 0.5)
        #expect(drivers[0].mailbox.withdrawals(of: trip) == [.expired] && drivers[1].mailbox.withdrawals(of: trip) == [.expired])
        #expect(drivers.map { $0.mailbox.offers(of: trip).count } == [1, 1, 1, 1, 0])
        #expect(drivers[3].mailbox.offers(of: trip).first?.round == 2)
        let searching = world.rider.mailbox.notices(of: trip).map(\.kind)
        #expect(searching == [.searching(round: 2, radius: 2_000)])

        // Round 3, at the largest radius: the last driver; nobody is asked twice.
        try await world.tick(after: 15)
        #expect(drivers.map { $0.mailbox.offers(of: trip).count } == [1, 1, 1, 1, 1])
        #expect(world.rider.mailbox.notices(of: trip).last?.kind == .searching(round: 3, radius: 3_000))
        // The rider's events keep one `seq` each, ascending.
        let seqs = world.rider.mailbox.events.map(\.seq)
        #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count)
    }

    @Test("a decline ends the driver's offer at once and, ending the round, starts the next without waiting")
    func declineMovesOnAtOnce() async throws {
        let world = try await World()
        let near = try await world.driver("near", at: 300)
        let middle = try await world.driver("middle", at: 600)
        let far = try await world.driver("far", at: 1_500)
        let trip = try await world.request()

        try await world.hub.declineTrip(id: trip, by: near.principal, from: near.mailbox)
        #expect(near.mailbox.withdrawals(of: trip) == [.declined])
        #expect(far.mailbox.offers(of: trip).isEmpty, "middle still holds its offer: same round")
        try await world.hub.declineTrip(id: trip, by: middle.principal, from: middle.mailbox)
        #expect(far.mailbox.offers(of: trip).map(\.round) == [2], "no tick needed")
        #expect(await world.holders(of: trip) == [far.principal.userID])

        // Refusals change nothing: a second decline, a driver with no offer, a rider, an unknown trip.
        let before = await world.holders(of: trip)
        for (principal, mailbox, code) in [
            (near.principal, near.mailbox, HubError.Code.noOffer), (world.rider.principal, world.rider.mailbox, .forbidden),
        ] {
            let refused = await outcome { () async throws(HubError) in try await world.hub.declineTrip(id: trip, by: principal, from: mailbox) }
            #expect(refused.failureCode == code)
        }
        let unknown = await outcome { () async throws(HubError) in try await world.hub.declineTrip(id: UUID(), by: far.principal, from: far.mailbox) }
        #expect(unknown.failureCode == .notFound)
        #expect(await world.holders(of: trip) == before)
        #expect(near.mailbox.withdrawals(of: trip) == [.declined])

        // Once the trip is taken, declining it is refused too, and no offer survives the accept.
        _ = try await world.accept(trip, by: far)
        let late = await outcome { () async throws(HubError) in try await world.hub.declineTrip(id: trip, by: far.principal, from: far.mailbox) }
        #expect(late.failureCode == .noOffer)
        #expect(await world.holders(of: trip).isEmpty)
        #expect(world.hub.drivers.offeredTrips().values.allSatisfy { !$0.contains(trip) })
    }

    @Test("when every driver in range let the offer expire or declined, no driver is left: the trip ends at once, each driver hears one thing")
    func noDriverLeftInRange() async throws {
        let world = try await World(Self.settings(dispatchTimeout: 120))
        let ignoring = try await world.driver("ignoring", at: 300)
        let declining = try await world.driver("declining", at: 600)
        let trip = try await world.request()
        #expect(ignoring.mailbox.offers(of: trip).count == 1 && declining.mailbox.offers(of: trip).count == 1)
        _ = try await world.hub.declineTrip(id: trip, by: declining.principal, from: declining.mailbox)
        try await world.tick(after: 1)
        #expect(await world.hub.tripActor(id: trip)?.current.status == .requested, "an offer is still live")
        try await world.tick(after: 14)
        let ended = try #require(world.rider.mailbox.states(of: trip).last)
        #expect(ended.status == .canceled && ended.cancelReason == .noDriverFound, "long before dispatchTimeout")
        #expect(ignoring.mailbox.withdrawals(of: trip) == [.expired])
        #expect(ignoring.mailbox.states(of: trip).map(\.status) == [.requested], "withdrawn, so not told the end too")
        #expect(declining.mailbox.withdrawals(of: trip) == [.declined])
        #expect(world.hub.drivers.offeredTrips().values.allSatisfy { !$0.contains(trip) })
    }

    @Test("after dispatchTimeout the trip ends CANCELED with no_driver_found: the rider and every driver holding its offer hear it")
    func noDriverFound() async throws {
        let world = try await World(Self.settings(dispatchTimeout: 40))
        // Nobody near: the request keeps looking (late drivers), and so does one without a pick-up.
        let trip = try await world.request()
        let plain = try await world.request(withPickUp: false)
        try await world.tick(after: 15)
        #expect(await world.hub.tripActor(id: trip)?.current.status == .requested)
        // A driver who comes along later holds the offer when time runs out.
        let late = try await world.driver("late", at: 2_000)
        try await world.tick(after: 20)
        #expect(late.mailbox.offers(of: trip).count == 1)
        #expect(late.mailbox.offers(of: trip).first?.expires == Timestamp(microseconds: Fixture.epoch.microseconds + 40_000_000))

        try await world.tick(after: 4.9)
        #expect(await world.hub.tripActor(id: trip)?.current.status == .requested)
        try await world.tick(after: 0.1)
        for id in [trip, plain] {
            let ended = try #require(world.rider.mailbox.states(of: id).last)
            #expect(ended.status == .canceled && ended.cancelReason == .noDriverFound && ended.driverID == nil)
            #expect(late.mailbox.states(of: id).last?.cancelReason == .noDriverFound, "a holder learns it at once")
        }
        #expect(world.hub.drivers.offeredTrips().values.allSatisfy { $0.isEmpty })
        let outcomes = world.hub.dispatchOutcomes.noDriverFound(before: world.clock.now())
        #expect(outcomes.count == 2 && outcomes.contains(Self.pickUp) && outcomes.contains(nil))

        // Ended: no further tick changes it, and the rider may ask again.
        try await world.tick(after: 60)
        #expect(world.rider.mailbox.states(of: trip).count == 2)
        let again = try await world.request()
        #expect(world.rider.mailbox.states(of: again).first?.status == .requested)
    }

    @Test("late drivers: one that connects and sends a fix, finishes a trip, comes back online or sends a fresh fix is offered at the next tick")
    func lateDrivers() async throws {
        let world = try await World(Self.settings(drivers: 5))
        let busy = try await world.driver("busy", at: 200)
        let other = try await world.request(withPickUp: false)
        _ = try await world.accept(other, by: busy)
        let offline = try await world.driver("offline", at: 300)
        try await world.hub.setAvailability(online: false, by: offline.principal)
        let stale = try await world.driver("stale", at: 400)
        // 31 s later the stale driver's fix is too old; the others keep theirs fresh.
        world.clock.advance(31)
        try await world.move(busy, to: 200)
        try await world.move(offline, to: 300)
        let trip = try await world.request()
        for driver in [busy, offline, stale] { #expect(driver.mailbox.offers(of: trip).isEmpty) }

        let newcomer = try await world.driver("newcomer", at: 500)
        #expect(newcomer.mailbox.offers(of: trip).isEmpty, "not at the fix: at the next tick")
        try await world.tick(after: 0.5, refreshing: false)
        #expect(newcomer.mailbox.offers(of: trip).count == 1)
        #expect(stale.mailbox.offers(of: trip).isEmpty && offline.mailbox.offers(of: trip).isEmpty && busy.mailbox.offers(of: trip).isEmpty)

        // Each becomes available: a fresh fix, back online, its trip finished.
        try await world.move(stale, to: 400)
        try await world.hub.setAvailability(online: true, by: offline.principal)
        _ = try await world.hub.updateTrip(id: other, TripUpdate(status: .completed), by: busy.principal, from: busy.mailbox)
        try await world.tick(after: 0.5, refreshing: false)
        for driver in [busy, offline, stale] { #expect(driver.mailbox.offers(of: trip).count == 1, "\(driver.principal)") }
    }

    @Test("offline and stale drivers get no offers and lose those they hold; an offline driver still drives and tracks its trip")
    func offlineAndStale() async throws {
        // Offers that outlive the 30 s a fix stays fresh: withdrawn for the driver, not expired.
        let world = try await World(Self.settings(drivers: 3, offerTimeout: 60))
        let holder = try await world.driver("holder", at: 300)
        let fading = try await world.driver("fading", at: 400)
        let driving = try await world.driver("driving", at: 100)
        let trip = try await world.request()
        #expect([holder, fading, driving].allSatisfy { $0.mailbox.offers(of: trip).count == 1 })

        // The driving driver takes the trip, then goes offline for a break: it keeps driving it.
        _ = try await world.accept(trip, by: driving)
        #expect(try await world.hub.setAvailability(online: false, by: driving.principal) == false)
        try await world.move(driving, to: 40, speed: 0)
        #expect(world.rider.mailbox.locations.last?.pickUp?.distance ?? 0 > 39)
        let second = try await world.request()
        #expect(driving.mailbox.offers(of: second).isEmpty)

        // The holder goes offline, the other's fix goes stale: at the next tick both lose the offer.
        #expect(holder.mailbox.offers(of: second).count == 1 && fading.mailbox.offers(of: second).count == 1)
        try await world.hub.setAvailability(online: false, by: holder.principal)
        world.clock.advance(30)
        try await world.move(holder, to: 300)
        await world.hub.dispatchTick()
        #expect(holder.mailbox.withdrawals(of: second) == [.unavailable] && fading.mailbox.withdrawals(of: second) == [.unavailable])
        #expect(await world.holders(of: second).isEmpty)
        let third = try await world.request()
        #expect(holder.mailbox.offers(of: third).isEmpty && fading.mailbox.offers(of: third).isEmpty)

        // Offline, the driver still finishes its trip.
        let moved = try await world.hub.updateTrip(id: trip, TripUpdate(status: .inProgress), by: driving.principal, from: driving.mailbox)
        #expect(moved.trip.status == .inProgress)
        // Only drivers go offline; a driver with no connection cannot.
        let rider = await outcome { () async throws(HubError) in try await world.hub.setAvailability(online: false, by: world.rider.principal) }
        #expect(rider.failureCode == .forbidden)
        let gone = await outcome { () async throws(HubError) in try await world.hub.setAvailability(online: false, by: Principal(userID: 999, group: .driver)) }
        #expect(gone.failureCode == .invalid)
    }

    @Test("a trip without a pick-up point: a driver connecting later holds its offer and hears its cancel; a busy driver keeps it")
    func withoutPickUpPoint() async throws {
        let world = try await World()
        let early = try await world.driver("early", at: nil)
        let trip = try await world.request(withPickUp: false)
        #expect(early.mailbox.states(of: trip).map(\.status) == [.requested])
        let late = try await world.driver("late", at: nil)
        #expect(late.mailbox.events.isEmpty, "it lists the trip over REST")
        #expect(await world.holders(of: trip) == [early.principal.userID, late.principal.userID])
        // A driver who declines is told and hears no more of it.
        try await world.hub.declineTrip(id: trip, by: early.principal, from: early.mailbox)
        #expect(early.mailbox.withdrawals(of: trip) == [.declined])
        try await world.tick(after: 1)
        _ = try await world.hub.cancelTrip(id: trip, by: world.rider.principal, from: world.rider.mailbox)
        #expect(late.mailbox.states(of: trip).map(\.cancelReason) == [.riderCanceled])
        #expect(early.mailbox.states(of: trip).count == 1)
    }

    @Test("IN_PROGRESS is refused farther than pickupRadius from the pick-up (too_far_from_pickup), allowed within it or with the check off")
    func pickUpRadius() async throws {
        for radius in [150.0, 0] {
            let world = try await World(Self.settings(pickUpRadius: radius))
            let driver = try await world.driver("driver", at: 500)
            let trip = try await world.request()
            _ = try await world.accept(trip, by: driver)
            let far = await outcome { () async throws(HubError) in
                try await world.hub.updateTrip(id: trip, TripUpdate(status: .inProgress), by: driver.principal, from: driver.mailbox)
            }
            if radius == 0 {
                #expect(far.failureCode == nil)
                continue
            }
            #expect(far.failureCode == .tooFarFromPickUp)
            #expect(await world.hub.tripActor(id: trip)?.current.status == .started)
            try await world.move(driver, to: 120)
            let near = try await world.hub.updateTrip(id: trip, TripUpdate(status: .inProgress), by: driver.principal, from: driver.mailbox)
            #expect(near.trip.status == .inProgress)
        }
    }

    @Test("the rider gets the ETA with each location, 'driver arriving' and 'driver arrived' once each")
    func arrivingAndArrived() async throws {
        let world = try await World()
        let driver = try await world.driver("driver", at: 900)
        let trip = try await world.request()
        _ = try await world.accept(trip, by: driver)
        let steps: [(seconds: Double, metres: Double, speed: Double?)] = [
            (0, 900, 10), (10, 400, 10), (10, 45, 4), (2, 30, 0), (3, 25, 0), (1, 25, 0), (5, 20, 0), (60, 200, 8), (5, 30, 0),
        ]
        for step in steps {
            world.clock.advance(step.seconds)
            try await world.move(driver, to: step.metres, speed: step.speed)
        }
        let progress = world.rider.mailbox.locations.compactMap(\.pickUp)
        #expect(progress.count == steps.count)
        #expect(abs(progress[0].distance - 900) < 1 && progress[0].eta == ETAModel().seconds(toCover: progress[0].distance, recentSpeed: 10))
        let notices = world.rider.mailbox.notices(of: trip)
        #expect(notices.map(\.kind).count == 2)
        guard notices.count == 2 else { return }
        if case .arriving(let distance, _) = notices[0].kind { #expect(abs(distance - 45) < 1) } else { Issue.record("first: \(notices[0])") }
        if case .arrived = notices[1].kind {} else { Issue.record("second: \(notices[1])") }
        #expect(notices.allSatisfy { $0.driverID == driver.principal.userID })
        // Each notice has a `seq` of its own, after the location that brought it.
        let seqs = world.rider.mailbox.events.map(\.seq)
        #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count)
        // IN_PROGRESS: no more ETA.
        _ = try await world.hub.updateTrip(id: trip, TripUpdate(status: .inProgress), by: driver.principal, from: driver.mailbox)
        try await world.move(driver, to: 500)
        #expect(world.rider.mailbox.locations.last?.pickUp == nil)
    }

    @Test("supply and demand per cell: waiting requests, available drivers, requests that ended with no driver in the last hour")
    func supplyAndDemand() async throws {
        let world = try await World(Self.settings(dispatchTimeout: 20))
        _ = try await world.driver("here", at: 0)
        let offline = try await world.driver("offline", at: 0)
        try await world.hub.setAvailability(online: false, by: offline.principal)
        _ = try await world.driver("elsewhere", at: 5_000)
        _ = try await world.request()
        _ = try await world.request(withPickUp: false)
        let cell = world.hub.drivers.grid.cell(containing: Self.pickUp)
        let far = world.hub.drivers.grid.cell(containing: Self.north(5_000))
        var demand = world.hub.supplyAndDemand()
        #expect(demand.cells.first { $0.cell == cell } == SupplyAndDemand.Cell(cell: cell, waiting: 1, available: 1))
        #expect(demand.cells.first { $0.cell == far }?.available == 1)
        #expect(demand.waitingWithoutPickUp == 1)

        try await world.tick(after: 20)
        demand = world.hub.supplyAndDemand()
        #expect(demand.cells.first { $0.cell == cell } == SupplyAndDemand.Cell(cell: cell, waiting: 0, available: 1, noDriverLastHour: 1))
        #expect(demand.noDriverWithoutPickUpLastHour == 1 && demand.waitingWithoutPickUp == 0)
        world.clock.advance(3_600)
        #expect(world.hub.supplyAndDemand().cells.allSatisfy { $0.noDriverLastHour == 0 })
    }

    @Test("concurrent accepts, declines and expiries on real actors: one winner per trip, and no busy driver left holding an offer")
    func concurrentDecisions() async throws {
        let world = try await World(Self.settings(drivers: 6, offerTimeout: 2))
        var drivers: [FanOutTests.Connection] = []
        for n in 0..<24 { drivers.append(try await world.driver("d\(n)", at: Double(50 + 30 * n))) }
        var trips: [UUID] = []
        for _ in 0..<8 { trips.append(try await world.request()) }
        let accepted = Counter()
        let gate = StartingGate()
        let fixedDrivers = drivers
        let fixedTrips = trips
        await withTaskGroup(of: Void.self) { group in
            for (n, driver) in fixedDrivers.enumerated() {
                group.addTask {
                    await gate.wait()
                    for round in 0..<6 {
                        for trip in fixedTrips where driver.mailbox.offers(of: trip).count > driver.mailbox.withdrawals(of: trip).count {
                            if (n + round) % 3 == 0 {
                                _ = try? await world.hub.declineTrip(id: trip, by: driver.principal, from: driver.mailbox)
                            } else if (try? await world.accept(trip, by: driver)) != nil {
                                accepted.increment()
                            }
                        }
                        await Task.yield()
                    }
                }
            }
            group.addTask {
                await gate.wait()
                for _ in 0..<6 {
                    world.clock.advance(1)
                    await world.hub.dispatchTick()
                    await Task.yield()
                }
            }
            await gate.open(whenWaiting: fixedDrivers.count + 1)
        }
        await world.hub.dispatchTick()

        var winners = 0
        for trip in trips {
            let state = try #require(await world.hub.tripActor(id: trip)?.current)
            let heard = Set(world.rider.mailbox.states(of: trip).compactMap(\.driverID))
            #expect(heard.count <= 1, "one winner")
            if let driver = state.driverID {
                winners += 1
                #expect(world.hub.drivers.activeTrip(of: driver) == trip)
                #expect(await world.holders(of: trip).isEmpty)
            }
        }
        #expect(winners == accepted.count && winners > 0)
        // No busy driver holds a live offer once a tick has run, and no offer outlived its trip's wait.
        for trip in trips {
            for holder in await world.holders(of: trip) { #expect(world.hub.drivers.activeTrip(of: holder) == nil, "driver \(holder) busy") }
        }
        let waiting = Set(world.hub.index.waitingTrips())
        for (_, offered) in world.hub.drivers.offeredTrips() { #expect(offered.isSubset(of: waiting)) }
        // Every driver took at most one trip.
        let busy = drivers.compactMap { world.hub.drivers.activeTrip(of: $0.principal.userID) }
        #expect(busy.count == Set(busy).count)
    }
}
