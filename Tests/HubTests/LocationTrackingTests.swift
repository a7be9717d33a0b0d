import Foundation
import Testing

@testable import Hub
import TestSupport

@Suite("GPS tracking, cancel and resume through the hub's actors", MachineLoad.shared)
struct LocationTrackingTests {
    typealias World = FanOutTests.World

    static let downtown = GeoPoint(lat: 37.7749, lng: -122.4194)

    static func fix(_ n: Int, at now: Timestamp = .now()) -> LocationFix {
        LocationFix(
            point: GeoPoint(lat: downtown.lat + Double(n) * 1e-5, lng: downtown.lng), heading: 90, speed: 8,
            accuracy: 5, timestamp: now
        )
    }

    /// A trip of `world.rider` accepted (`STARTED`) by the first driver.
    static func startedTrip(_ world: World) async throws -> UUID {
        let trip = try await world.createTrip().trip.id
        _ = try await world.update(trip, to: .started, by: world.drivers[0])
        return trip
    }

    @Test("a driver's locations reach the rider in order with growing seq, and land in the track and the change set")
    func locationsReachRider() async throws {
        let world = try await World(driverCount: 2)
        let trip = try await Self.startedTrip(world)
        let driver = world.drivers[0]
        _ = world.hub.changes.drain()
        for n in 0..<50 {
            try await world.hub.recordAndSettle(Self.fix(n), by: driver.principal, from: driver.mailbox)
        }
        let received = world.rider.mailbox.locations
        #expect(received.map(\.fix) == (0..<50).map { Self.fix($0, at: received[$0].fix.timestamp) })
        let seqs = received.map(\.seq)
        #expect(seqs == Array(seqs.sorted()) && Set(seqs).count == 50)
        #expect(received.allSatisfy { $0.tripID == trip && $0.driverID == driver.principal.userID })
        // The sender does not get its own locations back; other drivers hear nothing.
        #expect(driver.mailbox.locations.isEmpty)
        #expect(world.drivers[1].mailbox.locations.isEmpty)

        let actor = try #require(world.hub.tripActor(id: trip))
        #expect(await actor.trackPoints.map(\.seq) == seqs)
        #expect(await actor.current.seq == seqs.last)
        let changes = world.hub.changes.drain()
        #expect(changes.trackPoints.map(\.seq) == seqs)
        #expect(changes.trips[trip] == nil, "a location is stored as its track point, not as a new trip row")
        #expect(changes.driverPositions[driver.principal.userID]?.fix.point == Self.fix(49).point)
    }

    @Test("a trip restored with its track keeps the track and goes on above the newest point's seq and the stored row's")
    func restoredTripContinuesAfterItsTrack() async throws {
        let rider = User(id: 3, username: "rider", firstName: "R", lastName: "R", group: .rider, photo: nil, passwordHash: "h")
        let driver = User(id: 7, username: "driver", firstName: "D", lastName: "D", group: .driver, photo: nil, passwordHash: "h")
        var started = Fixture.trip(status: .started, riderID: rider.id, driverID: driver.id)
        started.seq = 2
        let track = (3...9).map { TrackPoint(tripID: started.id, seq: Int64($0), fix: Self.fix($0)) }
        let hub = Hub()
        let before = Timestamp.now().microseconds
        hub.restore(users: [rider, driver], trips: [started], tracks: [started.id: track])
        let actor = try #require(hub.tripActor(id: started.id))
        // From the clock in microseconds (see `Hub.restartSeq`), far above both.
        let restored = await actor.current.seq
        #expect(restored >= before && restored <= Timestamp.now().microseconds)
        #expect(await actor.trackPoints == track)

        let socket = TestMailbox()
        let principal = Principal(userID: driver.id, group: .driver)
        _ = await hub.connect(principal, mailbox: socket)
        try await hub.recordAndSettle(Self.fix(10), by: principal, from: socket)
        #expect(await actor.trackPoints.map(\.seq) == Array(3...9) + [restored + 1])
        let moved = try await hub.updateTrip(id: started.id, TripUpdate(status: .inProgress), by: principal, from: socket)
        #expect(moved.trip.seq == restored + 2)
    }

    @Test("a location without an active trip moves the driver but reaches no one; a bad one changes nothing")
    func locationWithoutTripAndBadLocations() async throws {
        let world = try await World(driverCount: 1)
        let driver = world.drivers[0]
        try await world.hub.recordAndSettle(Self.fix(0), by: driver.principal, from: driver.mailbox)
        #expect(world.hub.drivers.cell(of: driver.mailbox.connectionID) == world.hub.drivers.grid.cell(containing: Self.fix(0).point))
        #expect(world.rider.mailbox.events.isEmpty)
        _ = world.hub.changes.drain()

        let before = world.hub.drivers.cell(of: driver.mailbox.connectionID)
        let now = Timestamp.now()
        let bad: [LocationFix] = [
            LocationFix(point: GeoPoint(lat: 91, lng: 0), timestamp: now),
            LocationFix(point: GeoPoint(lat: 0, lng: -180.5), timestamp: now),
            LocationFix(point: GeoPoint(lat: .nan, lng: 0), timestamp: now),
            LocationFix(point: GeoPoint(lat: 0, lng: .infinity), timestamp: now),
            LocationFix(point: Self.downtown, heading: 360, timestamp: now),
            LocationFix(point: Self.downtown, speed: -1, timestamp: now),
            LocationFix(point: Self.downtown, speed: 150, timestamp: now),
            LocationFix(point: Self.downtown, accuracy: -3, timestamp: now),
            LocationFix(point: Self.downtown, timestamp: Timestamp(microseconds: now.microseconds + 3_600_000_000)),
            LocationFix(point: Self.downtown, timestamp: Timestamp(microseconds: 0)),
        ]
        for fix in bad {
            let result = await outcome { () async throws(HubError) in
                try await world.hub.recordAndSettle(fix, by: driver.principal, from: driver.mailbox)
            }
            #expect(result.failureCode == .invalid, "\(fix)")
        }
        let rider = world.rider
        let forbidden = await outcome { () async throws(HubError) in
            try await world.hub.recordAndSettle(Self.fix(1), by: rider.principal, from: rider.mailbox)
        }
        #expect(forbidden.failureCode == .forbidden)
        #expect(world.hub.drivers.cell(of: driver.mailbox.connectionID) == before)
        #expect(world.hub.changes.drain().isEmpty)
    }

    @Test("a trip with a pick-up alerts only the nearest available drivers, nearest first")
    func nearbyDispatch() async throws {
        var settings = Hub.Settings()
        settings.dispatch = DispatchPolicy(initialRadius: 500, maxRadius: 5_000, driverCount: 3)
        let hub = Hub(settings: settings)
        let rider = await FanOutTests.connect(hub, try Fixture.user(hub.users, "rider", .rider))
        // Drivers 0...5 at 100 m, 200 m, ... 600 m north of downtown; driver 6 is 50 km away.
        var drivers: [FanOutTests.Connection] = []
        for n in 0..<7 {
            let driver = await FanOutTests.connect(hub, try Fixture.user(hub.users, "driver\(n)", .driver))
            let metres = n == 6 ? 50_000.0 : Double(n + 1) * 100
            let point = GeoPoint(lat: Self.downtown.lat + metres / 111_195, lng: Self.downtown.lng)
            try await hub.recordAndSettle(LocationFix(point: point, timestamp: .now()), by: driver.principal, from: driver.mailbox)
            drivers.append(driver)
        }
        let request = TripRequest(pickUpAddress: "A", dropOffAddress: "B", pickUpLocation: Self.downtown)
        let first = try await hub.createTrip(request, by: rider.principal, from: rider.mailbox)
        #expect(drivers.map { $0.mailbox.trips.count } == [1, 1, 1, 0, 0, 0, 0])
        #expect(first.trip.pickUpLocation == Self.downtown)

        // The nearest driver takes it and is busy: the next request goes to drivers 1, 2, 3.
        _ = try await hub.updateTrip(id: first.trip.id, TripUpdate(status: .started), by: drivers[0].principal, from: drivers[0].mailbox)
        let second = try await hub.createTrip(request, by: rider.principal, from: rider.mailbox)
        let alerted = drivers.map { $0.mailbox.trips.contains { $0.trip.id == second.trip.id } }
        #expect(alerted == [false, true, true, true, false, false, false])

        // Order of alerts: the map returns the nearest first.
        let order = hub.drivers.driversToAlert(for: UUID(), near: Self.downtown, policy: settings.dispatch).map(\.connectionID)
        #expect(order == [1, 2, 3].map { drivers[$0].mailbox.connectionID })
        // Without a pick-up: every available driver, as the reference did.
        let all = hub.drivers.driversToAlert(for: UUID(), near: nil, policy: settings.dispatch).map(\.connectionID)
        #expect(Set(all) == Set(drivers.dropFirst().map(\.mailbox.connectionID)))
    }

    @Test("the rider cancels a trip: offered drivers and the trip's driver learn it, and the driver is free again")
    func cancel() async throws {
        let world = try await World(driverCount: 3)
        let requested = try await world.createTrip().trip.id
        let canceled = try await world.hub.cancelTrip(id: requested, by: world.rider.principal, from: world.rider.mailbox)
        #expect(canceled.trip.status == .canceled)
        #expect(world.drivers.allSatisfy { $0.mailbox.statuses == [.requested, .canceled] })
        #expect(world.rider.mailbox.statuses == [.requested, .canceled])

        let started = try await Self.startedTrip(world)
        #expect(world.hub.drivers.activeTrip(of: world.drivers[0].principal.userID) == started)
        let bystander = await outcome { () async throws(HubError) in try await world.hub.cancelTrip(id: started, by: world.bystander.principal, from: world.bystander.mailbox) }
        #expect(bystander.failureCode == .forbidden)
        let byDriver = await outcome { () async throws(HubError) in try await world.hub.cancelTrip(id: started, by: world.drivers[0].principal, from: world.drivers[0].mailbox) }
        #expect(byDriver.failureCode == .forbidden)
        _ = try await world.hub.cancelTrip(id: started, by: world.rider.principal, from: world.rider.mailbox)
        #expect(world.drivers[0].mailbox.statuses.last == .canceled)
        #expect(world.hub.drivers.activeTrip(of: world.drivers[0].principal.userID) == nil)

        let moving = try await Self.startedTrip(world)
        _ = try await world.update(moving, to: .inProgress, by: world.drivers[0])
        let late = await outcome { () async throws(HubError) in try await world.hub.cancelTrip(id: moving, by: world.rider.principal, from: world.rider.mailbox) }
        #expect(late.failureCode == .invalidTransition)
        let driver = world.drivers[0]
        let viaUpdate = await outcome { () async throws(HubError) in
            try await world.hub.updateTrip(id: moving, TripUpdate(status: .canceled), by: driver.principal, from: driver.mailbox)
        }
        #expect(viaUpdate.failureCode == .invalidTransition)
        #expect(await world.hub.tripActor(id: moving)?.current.status == .inProgress)
    }

    @Test("resume replays exactly the events missed before rejoining, once; past the history, the current state")
    func resume() async throws {
        var settings = Hub.Settings()
        settings.historyLength = 8
        let hub = Hub(settings: settings)
        let rider = try Fixture.user(hub.users, "rider", .rider)
        let driver = await FanOutTests.connect(hub, try Fixture.user(hub.users, "driver", .driver))
        let first = TestMailbox()
        _ = await hub.connect(rider, mailbox: first)
        let trip = try await hub.createTrip(Fixture.request, by: rider, from: first).trip.id
        _ = try await hub.updateTrip(id: trip, TripUpdate(status: .started), by: driver.principal, from: driver.mailbox)
        let lastSeen = try #require(first.events.last?.seq)
        await hub.disconnect(rider, mailbox: first, joined: [trip])

        // While the rider is away: three locations.
        for n in 0..<3 { try await hub.recordAndSettle(Self.fix(n), by: driver.principal, from: driver.mailbox) }
        let second = TestMailbox()
        #expect(await hub.connect(rider, mailbox: second) == [trip])
        // Live again: one more location arrives before the client asks to resume.
        try await hub.recordAndSettle(Self.fix(3), by: driver.principal, from: driver.mailbox)
        #expect(second.events.map(\.seq) == [lastSeen + 4])
        let reply = try await hub.resume(tripID: trip, after: lastSeen, by: rider, from: second)
        #expect(reply == .replay(Array(second.events.suffix(3))))
        #expect(second.events.map(\.seq) == [lastSeen + 4, lastSeen + 1, lastSeen + 2, lastSeen + 3])
        // Asking again replays nothing: each event reaches the connection once.
        #expect(try await hub.resume(tripID: trip, after: lastSeen, by: rider, from: second) == .replay([]))
        #expect(second.events.count == 4)

        // A connection whose gap the 8-event history no longer covers gets the current state.
        let third = TestMailbox()
        _ = await hub.connect(rider, mailbox: third)
        for n in 4..<20 { try await hub.recordAndSettle(Self.fix(n), by: driver.principal, from: driver.mailbox) }
        let fourth = TestMailbox()
        _ = await hub.connect(rider, mailbox: fourth)
        let stale = try await hub.resume(tripID: trip, after: 1, by: rider, from: fourth)
        guard case .currentState(.trip(let view)) = stale else {
            Issue.record("expected the current state, got \(stale)")
            return
        }
        // Under the seq of the state (STARTED, the last event the rider saw), not of the newest location.
        #expect(view.trip.status == .started && view.trip.seq == lastSeen)
        #expect(fourth.events == [.trip(view)])
        let stranger = try Fixture.user(hub.users, "stranger", .rider)
        let refused = await outcome { () async throws(HubError) in try await hub.resume(tripID: trip, after: 0, by: stranger, from: TestMailbox()) }
        #expect(refused.failureCode == .forbidden)
    }
}

extension Result where Failure == HubError {
    var failureCode: HubError.Code? {
        if case .failure(let error) = self { error.code } else { nil }
    }
}
