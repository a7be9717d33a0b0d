import Foundation
import Testing

@testable import Hub
import TestSupport

/// The pure rules of dispatch: offer rounds (`OfferRounds`), the ETA model, arrival (`ArrivalWatch`)
/// and the pick-up radius (`TripRules`), each checked in a table without actors or clocks.
@Suite("Offer rounds, ETA and arrival: the pure rules", MachineLoad.shared)
struct OfferRoundsTests {
    static let start = Fixture.epoch

    static func at(_ seconds: Double) -> Timestamp {
        Timestamp(microseconds: start.microseconds + Int64(seconds * 1_000_000))
    }

    /// A driver of the fake world: its connection is its id.
    struct Driver {
        let id: Int
        let distance: Double
        var available = true

        var connection: ConnectionID { ConnectionID(UInt64(id)) }
    }

    /// The search `OfferRounds` is given: the nearest available drivers within the radius (any,
    /// without a pick-up), not excluded, at most `limit`; records what it was asked.
    final class World {
        var drivers: [Driver]
        var asked: [(radius: Double?, excluding: Set<Int>, limit: Int)] = []

        init(_ drivers: [Driver]) {
            self.drivers = drivers
        }

        func search(_ radius: Double?, _ excluding: Set<Int>, _ limit: Int) -> [OfferRounds.Candidate] {
            asked.append((radius, excluding, limit))
            return drivers.filter { driver in
                driver.available && !excluding.contains(driver.id) && (radius.map { driver.distance <= $0 } ?? true)
            }
                .sorted { $0.distance < $1.distance }
                .prefix(limit)
                .map { OfferRounds.Candidate(connection: $0.connection, driverID: $0.id, distance: radius == nil ? nil : $0.distance) }
        }
    }

    static let search = DispatchPolicy(initialRadius: 1_000, maxRadius: 3_000, driverCount: 2)
    static let policy = OfferPolicy(radiusStep: 1_000, offerTimeout: .seconds(15), dispatchTimeout: .seconds(120))

    static func rounds(pickUp: Bool = true, search: DispatchPolicy = search, policy: OfferPolicy = policy) -> OfferRounds {
        OfferRounds(search: search, policy: policy, hasPickUp: pickUp, requestedAt: start)
    }

    static func offered(_ step: OfferRounds.Step) -> [Int] { step.offers.map(\.candidate.driverID) }

    @Test(
        "each round reaches one step farther, up to the largest radius",
        arguments: [(1, 1_000.0), (2, 2_000.0), (3, 3_000.0), (4, 3_000.0), (9, 3_000.0)]
    )
    func radiusPerRound(round: Int, radius: Double) {
        // Nobody anywhere: the first step skips every empty round up to the largest radius; a
        // world with one driver far away stops the rounds at the one that reaches it.
        var rounds = Self.rounds()
        let world = World([Driver(id: 1, distance: radius - 1)])
        if round <= 3 {
            _ = rounds.advance(now: Self.at(0), search: world.search)
            #expect(rounds.round == round)
            #expect(rounds.radius == radius)
        } else {
            let empty = World([])
            _ = rounds.advance(now: Self.at(0), search: empty.search)
            #expect(rounds.round == 3 && rounds.radius == 3_000, "empty rounds skipped up to the largest radius, then it stays")
        }
    }

    @Test("round 1 asks the nearest drivers within its radius; expiry moves to the next nearest not yet asked, one step farther")
    func expiryMovesOn() {
        let world = World([
            Driver(id: 1, distance: 300), Driver(id: 2, distance: 600), Driver(id: 3, distance: 900), Driver(id: 4, distance: 1_500),
            Driver(id: 5, distance: 2_500),
        ])
        var rounds = Self.rounds()
        let first = rounds.advance(now: Self.at(0), search: world.search)
        #expect(Self.offered(first) == [1, 2])
        #expect(first.offers.allSatisfy { $0.offer.expires == Self.at(15) && $0.offer.round == 1 })
        #expect(first.newRound == 1 && rounds.radius == 1_000)
        #expect(world.asked.last?.radius == 1_000 && world.asked.last?.limit == 2)

        // Nothing changes before the expiry.
        let quiet = rounds.advance(now: Self.at(14.9), search: world.search)
        #expect(quiet == OfferRounds.Step())
        #expect(Set(rounds.live.keys) == [ConnectionID(1), ConnectionID(2)])

        // Both expire: round 2 reaches 2,000 m, asks 3 and 4 (not 1 and 2 again).
        let second = rounds.advance(now: Self.at(15), search: world.search)
        #expect(second.withdrawn.map(\.connection) == [ConnectionID(1), ConnectionID(2)])
        #expect(second.withdrawn.allSatisfy { $0.reason == .expired })
        #expect(Self.offered(second) == [3, 4])
        #expect(second.newRound == 2 && rounds.radius == 2_000)
        #expect(world.asked.last?.excluding == [1, 2])

        // Round 3 at the largest radius: only 5 is left.
        let third = rounds.advance(now: Self.at(30), search: world.search)
        #expect(Self.offered(third) == [5])
        #expect(third.newRound == 3 && rounds.radius == 3_000)
        #expect(rounds.asked == [1, 2, 3, 4, 5])
    }

    @Test("a round ends only when none of its offers is live; a decline ends that driver's offer at once")
    func declineEndsTheRound() {
        let world = World([Driver(id: 1, distance: 300), Driver(id: 2, distance: 600), Driver(id: 3, distance: 1_500)])
        var rounds = Self.rounds()
        _ = rounds.advance(now: Self.at(0), search: world.search)
        #expect(rounds.holdsOffer(1) && rounds.holdsOffer(2))
        #expect(rounds.decline(driverID: 1) == [ConnectionID(1)])
        #expect(rounds.decline(driverID: 1).isEmpty, "declined once")
        // One offer still live: same round, and no room left in it (it made 2).
        let same = rounds.advance(now: Self.at(1), search: world.search)
        #expect(same.newRound == nil && same.offers.isEmpty)
        #expect(rounds.decline(driverID: 2) == [ConnectionID(2)])
        let next = rounds.advance(now: Self.at(2), search: world.search)
        #expect(next.newRound == 2 && Self.offered(next) == [3])
        // Its offer expires 15 s after it was made, not after the round began.
        #expect(next.offers.first?.offer.expires == Self.at(17))
    }

    @Test("a late driver within the round's radius is offered while the round has room; unavailable holders are withdrawn")
    func lateDriversAndUnavailableHolders() {
        let world = World([Driver(id: 1, distance: 300)])
        var rounds = Self.rounds()
        #expect(Self.offered(rounds.advance(now: Self.at(0), search: world.search)) == [1])
        // Room for one more in round 1: a driver who became available at 800 m gets it at the next step.
        world.drivers.append(Driver(id: 2, distance: 800))
        let late = rounds.advance(now: Self.at(1), search: world.search)
        #expect(Self.offered(late) == [2] && late.newRound == nil)
        #expect(late.offers.first?.offer.expires == Self.at(16))
        // The round is full: a third, nearer still, waits for the next round.
        world.drivers.append(Driver(id: 3, distance: 100))
        #expect(rounds.advance(now: Self.at(2), search: world.search).offers.isEmpty)
        // Driver 1 went busy, offline or stale: withdrawn; 2 still holds, so the round goes on.
        let dropped = rounds.advance(now: Self.at(3), unavailable: [ConnectionID(1)], search: world.search)
        #expect(dropped.withdrawn.map(\.connection) == [ConnectionID(1)] && dropped.withdrawn.first?.reason == .unavailable)
        #expect(dropped.offers.isEmpty && rounds.round == 1)
        // 2 declines: round 2 goes to 3, the nearest not asked.
        _ = rounds.decline(driverID: 2)
        #expect(Self.offered(rounds.advance(now: Self.at(4), search: world.search)) == [3])
    }

    @Test("past dispatchTimeout the step only says so; offers never outlive the deadline")
    func timeout() {
        let world = World([Driver(id: 1, distance: 300)])
        var rounds = Self.rounds(policy: OfferPolicy(radiusStep: 1_000, offerTimeout: .seconds(15), dispatchTimeout: .seconds(20)))
        _ = rounds.advance(now: Self.at(0), search: world.search)
        world.drivers.append(Driver(id: 2, distance: 400))
        let capped = rounds.advance(now: Self.at(10), search: world.search)
        #expect(capped.offers.first?.offer.expires == Self.at(20), "expires at the deadline, not 15 s on")
        #expect(!rounds.advance(now: Self.at(19.999), search: world.search).timedOut)
        let end = rounds.advance(now: Self.at(20), search: world.search)
        #expect(end.timedOut && end.offers.isEmpty && end.withdrawn.isEmpty)
    }

    @Test("at the largest radius, once every driver in range was asked and none holds an offer, no driver is left: the trip ends")
    func noDriverLeftInRange() {
        let world = World([Driver(id: 1, distance: 300), Driver(id: 2, distance: 2_500)])
        var rounds = Self.rounds()
        #expect(Self.offered(rounds.advance(now: Self.at(0), search: world.search)) == [1])
        // 1 declines: round 2 finds nobody new within 2,000 m and is skipped; round 3 reaches 2.
        _ = rounds.decline(driverID: 1)
        let last = rounds.advance(now: Self.at(1), search: world.search)
        #expect(Self.offered(last) == [2] && rounds.radius == 3_000 && !last.timedOut)
        // While 2's offer is live the trip waits.
        #expect(!rounds.advance(now: Self.at(10), search: world.search).timedOut)
        // It expires, nobody else is in range: the step ends the trip (long before dispatchTimeout).
        let end = rounds.advance(now: Self.at(16), search: world.search)
        #expect(end.timedOut && end.withdrawn.map(\.connection) == [ConnectionID(2)])
        // A request that never found anyone keeps looking at the largest radius until its deadline.
        var lonely = Self.rounds()
        let empty = World([])
        #expect(!lonely.advance(now: Self.at(0), search: empty.search).timedOut)
        #expect(!lonely.advance(now: Self.at(60), search: empty.search).timedOut)
        empty.drivers.append(Driver(id: 3, distance: 2_900))
        #expect(Self.offered(lonely.advance(now: Self.at(61), search: empty.search)) == [3], "a late driver still gets it")
        #expect(lonely.advance(now: Self.at(120), search: empty.search).timedOut)
    }

    @Test("without a pick-up point: every available driver, no expiry, late drivers too, nobody asked twice")
    func withoutPickUp() {
        let world = World([Driver(id: 1, distance: 50_000), Driver(id: 2, distance: 90_000, available: false)])
        var rounds = Self.rounds(pickUp: false)
        let first = rounds.advance(now: Self.at(0), search: world.search)
        #expect(Self.offered(first) == [1] && first.offers.first?.offer.expires == nil)
        #expect(world.asked.last?.radius == nil)
        world.drivers[1].available = true
        #expect(Self.offered(rounds.advance(now: Self.at(60), search: world.search)) == [2])
        _ = rounds.decline(driverID: 1)
        #expect(rounds.advance(now: Self.at(61), search: world.search).offers.isEmpty, "a decline is final")
        // A driver taking it up as it connects (no frame) counts as asked.
        var quiet = Self.rounds(pickUp: false)
        let held = quiet.hold(.init(connection: ConnectionID(7), driverID: 7, distance: nil))
        let again = quiet.hold(.init(connection: ConnectionID(8), driverID: 7, distance: nil))
        #expect(held && !again)
        #expect(quiet.holdsOffer(7) && quiet.asked == [7])
        var withPickUp = Self.rounds()
        let refused = withPickUp.hold(.init(connection: ConnectionID(7), driverID: 7, distance: nil))
        #expect(!refused, "only without a pick-up point")
    }

    @Test("a driver with two connections is asked once, on every connection the step found; it counts once")
    func oneDriverTwoConnections() {
        var rounds = Self.rounds()
        let step = rounds.advance(now: Self.at(0)) { _, excluding, _ in
            [
                .init(connection: ConnectionID(1), driverID: 9, distance: 100), .init(connection: ConnectionID(2), driverID: 9, distance: 120),
                .init(connection: ConnectionID(3), driverID: 4, distance: 200), .init(connection: ConnectionID(5), driverID: 6, distance: 300),
            ].filter { !excluding.contains($0.driverID) }
        }
        #expect(step.offers.map(\.candidate.connection) == [ConnectionID(1), ConnectionID(2), ConnectionID(3)])
        #expect(rounds.madeThisRound == 2)
        #expect(rounds.decline(driverID: 9) == [ConnectionID(1), ConnectionID(2)])
        rounds.forget(ConnectionID(3))
        #expect(rounds.live.isEmpty)
    }

    @Test(
        "ETA: distance × detour ÷ speed; the driver's own speed from 2 m/s, else the city speed",
        arguments: [
            (1_000.0, nil as Double?, 25.0, 1.3, 188),  // 1,300 m at 6.94 m/s
            (1_000.0, 10.0, 25.0, 1.3, 130),
            (1_000.0, 1.0, 25.0, 1.3, 188),  // crawling: the city speed
            (0.0, nil, 25.0, 1.3, 0),
            (500.0, nil, 36.0, 1.0, 50),
        ]
    )
    func eta(distance: Double, speed: Double?, citySpeed: Double, detour: Double, seconds: Int) {
        #expect(ETAModel(citySpeed: citySpeed, detourFactor: detour).seconds(toCover: distance, recentSpeed: speed) == seconds)
    }

    @Test("arrival: 'arriving' the first time within the radius, 'arrived' after two fixes over 5 s while waiting; each once")
    func arrival() {
        let policy = PickUpPolicy(arrivalRadius: 50, pickUpRadius: 150)
        let model = ETAModel()
        var watch = ArrivalWatch()
        // (seconds, metres, speed) → notices
        let fixes: [(Double, Double, Double?, [String])] = [
            (0, 400, 10, []),
            (10, 60, 8, []),
            (12, 45, 5, ["arriving"]),
            (14, 30, 4, []),  // inside, but moving
            (16, 80, 6, []),  // drove past: the stay starts again
            (18, 40, 0, []),  // back inside: arriving was said already
            (20, 40, 0, []),  // two fixes, only 2 s
            (23, 41, nil, ["arrived"]),
            (30, 41, 0, []),
            (40, 10, 0, []),
        ]
        for (seconds, distance, speed, expected) in fixes {
            let (progress, notices) = watch.observe(distance: distance, speed: speed, at: Self.at(seconds), policy: policy, eta: model)
            #expect(progress.distance == distance)
            let names = notices.map { kind -> String in
                switch kind {
                case .arriving: "arriving"
                case .arrived: "arrived"
                case .searching: "searching"
                }
            }
            #expect(names == expected, "fix at \(seconds) s, \(distance) m")
        }
        #expect(watch.arrivingSent && watch.arrivedSent)
    }

    @Test("the ETA sent with a location uses the mean of the driver's last reported speeds")
    func progressUsesRecentSpeed() {
        var watch = ArrivalWatch()
        for speed in [10.0, 12, 14] {
            _ = watch.observe(distance: 5_000, speed: speed, at: Self.at(0), policy: PickUpPolicy(), eta: ETAModel())
        }
        #expect(watch.recentSpeed == 12)
        let (progress, _) = watch.observe(distance: 1_200, speed: nil, at: Self.at(1), policy: PickUpPolicy(), eta: ETAModel(detourFactor: 1))
        #expect(progress.eta == 100)
    }

    static let pickUp = GeoPoint(lat: 52.52, lng: 13.405)

    static func north(_ metres: Double) -> GeoPoint {
        GeoPoint(lat: pickUp.lat + metres / 111_195, lng: pickUp.lng)
    }

    @Test(
        "IN_PROGRESS is refused farther than the pick-up radius, or with no known position; 0 or no pick-up point: not checked",
        arguments: [
            (150.0, 100.0 as Double?, true, true),
            (150.0, 149.0, true, true),
            (150.0, 151.0, true, false),
            (150.0, nil, true, false),
            (0.0, 5_000.0, true, true),
            (150.0, 5_000.0, false, true),
        ]
    )
    func pickUpRadius(radius: Double, metres: Double?, hasPickUp: Bool, allowed: Bool) {
        var trip = Fixture.trip(status: .started, riderID: 1, driverID: 10)
        trip.pickUpLocation = hasPickUp ? Self.pickUp : nil
        let driver = Principal(userID: 10, group: .driver)
        let check = PickUpCheck(radius: radius, driverPosition: metres.map(Self.north))
        let result = Result { () throws(HubError) in try TripRules.apply(TripUpdate(status: .inProgress), by: driver, to: trip, pickUp: check) }
        switch result {
        case .success(let next): #expect(allowed && next.status == .inProgress)
        case .failure(let error): #expect(!allowed && error.code == .tooFarFromPickUp, "\(error)")
        }
        // Only IN_PROGRESS is checked.
        #expect(throws: Never.self) { try TripRules.apply(TripUpdate(status: .completed), by: driver, to: trip, pickUp: check) }
    }

    @Test("a rider's cancel says rider_canceled; a trip no driver took ends CANCELED with no_driver_found, only from REQUESTED")
    func cancelReasons() throws {
        let rider = Principal(userID: 1, group: .rider)
        let canceled = try TripRules.cancel(Fixture.trip(status: .requested), by: rider, at: Self.at(1))
        #expect(canceled.status == .canceled && canceled.cancelReason == .riderCanceled)
        let ended = try TripRules.endWithoutDriver(Fixture.trip(status: .requested), at: Self.at(120))
        #expect(ended.status == .canceled && ended.cancelReason == .noDriverFound && ended.seq == 1 && ended.updated == Self.at(120))
        for status in TripStatus.allCases where status != .requested {
            #expect(throws: HubError.self) { try TripRules.endWithoutDriver(Fixture.trip(status: status, driverID: 10)) }
        }
    }
}
