import Foundation
import Testing

@testable import Hub
import TestSupport

@Suite("Fan-out: who hears about a trip, through connect, create, update and disconnect", MachineLoad.shared)
struct FanOutTests {
    /// A connected user: who it is, its socket, and the trip groups `connect` joined it to.
    struct Connection {
        let principal: Principal
        let mailbox: TestMailbox
        let joined: Set<UUID>
    }

    static func connect(_ hub: Hub, _ principal: Principal) async -> Connection {
        let mailbox = TestMailbox()
        let joined = await hub.connect(principal, mailbox: mailbox)
        return Connection(principal: principal, mailbox: mailbox, joined: joined)
    }

    /// A hub with `driverCount` connected drivers, a connected rider who will request a trip,
    /// and a connected bystander rider.
    struct World {
        let hub: Hub
        let drivers: [Connection]
        let rider: Connection
        let bystander: Connection

        init(driverCount: Int) async throws {
            let hub = Hub()
            var drivers: [Connection] = []
            for n in 0..<driverCount {
                drivers.append(await FanOutTests.connect(hub, try Fixture.user(hub.users, "driver\(n)", .driver)))
            }
            self.hub = hub
            self.drivers = drivers
            rider = await FanOutTests.connect(hub, try Fixture.user(hub.users, "rider", .rider))
            bystander = await FanOutTests.connect(hub, try Fixture.user(hub.users, "bystander", .rider))
        }

        func createTrip() async throws -> TripView {
            try await hub.createTrip(Fixture.request, by: rider.principal, from: rider.mailbox)
        }

        func update(_ tripID: UUID, to status: TripStatus, by driver: Connection) async throws -> TripView {
            try await hub.updateTrip(
                id: tripID,
                TripUpdate(status: status, riderID: rider.principal.userID, driverID: driver.principal.userID),
                by: driver.principal, from: driver.mailbox
            )
        }
    }

    @Test("create.trip alerts every connected driver and the sender once, and no other rider")
    func createAlertsDriversAndSender() async throws {
        let world = try await World(driverCount: 5)
        #expect(world.hub.drivers.count == 5)
        #expect(world.drivers.allSatisfy { $0.joined.isEmpty })

        let view = try await world.createTrip()
        #expect(view.trip.status == .requested)
        #expect(view.rider == world.hub.users.user(id: world.rider.principal.userID))
        #expect(view.driver == nil)

        for driver in world.drivers {
            #expect(driver.mailbox.events == [.trip(view)])
        }
        #expect(world.rider.mailbox.events == [.trip(view)])
        #expect(world.bystander.mailbox.events.isEmpty)
        #expect(world.hub.index.requestedTrips().map(\.id) == [view.trip.id])
        #expect(await world.hub.tripActor(id: view.trip.id)?.memberCount == 1)
    }

    @Test("a cancel from a connection outside the trip's group (a cluster's race after a takeover) reaches that connection")
    func cancelJoinsTheSender() async throws {
        let world = try await World(driverCount: 1)
        let created = try await world.createTrip()
        // The rider's new socket, not joined to the trip (as a socket of another node whose
        // connect notice reached the owner before the trip did).
        let stray = TestMailbox()
        let canceled = try await world.hub.cancelTrip(id: created.trip.id, by: world.rider.principal, from: stray)
        #expect(stray.events == [.trip(canceled)])
        #expect(world.rider.mailbox.statuses == [.requested, .canceled])
    }

    @Test("when one driver accepts, every alerted driver gets the trip once, no longer REQUESTED, then hears no more")
    func acceptReachesEveryAlertedDriver() async throws {
        let world = try await World(driverCount: 5)
        let created = try await world.createTrip()
        let winner = world.drivers[2]

        let accepted = try await world.update(created.trip.id, to: .started, by: winner)
        #expect(accepted.driver == world.hub.users.user(id: winner.principal.userID))
        for driver in world.drivers {
            #expect(driver.mailbox.events == [.trip(created), .trip(accepted)], "driver \(driver.principal.userID)")
        }
        #expect(world.rider.mailbox.events == [.trip(created), .trip(accepted)])
        #expect(world.bystander.mailbox.events.isEmpty)
        #expect(world.hub.index.requestedTrips().isEmpty)

        let moving = try await world.update(created.trip.id, to: .inProgress, by: winner)
        #expect(winner.mailbox.events.last == .trip(moving))
        #expect(winner.mailbox.events.count == 3)
        #expect(world.rider.mailbox.events.last == .trip(moving))
        for driver in world.drivers where driver.principal != winner.principal {
            #expect(driver.mailbox.events.count == 2, "a driver who lost the trip still hears about it")
        }
    }

    @Test("a driver may take a REQUESTED trip straight to IN_PROGRESS; the rider gets it with the nested driver")
    func forwardJumpReachesRider() async throws {
        let world = try await World(driverCount: 1)
        let created = try await world.createTrip()
        let driver = world.drivers[0]
        let view = try await world.update(created.trip.id, to: .inProgress, by: driver)
        #expect(world.rider.mailbox.statuses == [.requested, .inProgress])
        #expect(world.rider.mailbox.trips.last?.driver == world.hub.users.user(id: driver.principal.userID))
        #expect(world.rider.mailbox.trips.last == view)
    }

    @Test("a refused update reaches nobody and does not join the sender to the trip")
    func refusedUpdateReachesNobody() async throws {
        let world = try await World(driverCount: 2)
        let created = try await world.createTrip()
        let error = await #expect(throws: HubError.self) {
            try await world.hub.updateTrip(
                id: created.trip.id, TripUpdate(status: .started), by: world.bystander.principal,
                from: world.bystander.mailbox
            )
        }
        #expect(error?.code == .forbidden)
        _ = try await world.update(created.trip.id, to: .started, by: world.drivers[0])
        let late = await #expect(throws: HubError.self) {
            try await world.update(created.trip.id, to: .completed, by: world.drivers[1])
        }
        #expect(late?.code == .tripTaken)

        #expect(world.bystander.mailbox.events.isEmpty)
        #expect(world.drivers[1].mailbox.statuses == [.requested, .started])
        #expect(world.rider.mailbox.statuses == [.requested, .started])
        #expect(await world.hub.tripActor(id: created.trip.id)?.memberCount == 2)
        #expect(await world.hub.tripActor(id: created.trip.id)?.current.status == .started)
    }

    @Test("create.trip by a driver is refused and creates nothing; an unknown trip is not_found")
    func refusedCreateAndUnknownTrip() async throws {
        let world = try await World(driverCount: 2)
        _ = world.hub.changes.drain()
        let error = await #expect(throws: HubError.self) {
            try await world.hub.createTrip(Fixture.request, by: world.drivers[0].principal, from: world.drivers[0].mailbox)
        }
        #expect(error?.code == .forbidden)
        #expect(world.hub.index.countsByStatus().isEmpty)
        #expect(world.hub.changes.pendingCount == 0)
        #expect(world.drivers.allSatisfy { $0.mailbox.events.isEmpty })

        let missing = await #expect(throws: HubError.self) {
            try await world.update(UUID(), to: .started, by: world.drivers[0])
        }
        #expect(missing?.code == .notFound)
    }

    @Test("a disconnected driver leaves the drivers group and is not alerted of new trips")
    func disconnectedDriverIsNotAlerted() async throws {
        let world = try await World(driverCount: 2)
        let gone = world.drivers[0]
        await world.hub.disconnect(gone.principal, mailbox: gone.mailbox, joined: gone.joined)
        #expect(world.hub.drivers.count == 1)

        let created = try await world.createTrip()
        #expect(gone.mailbox.events.isEmpty)
        #expect(world.drivers[1].mailbox.events == [.trip(created)])
    }

    @Test("a rider who disconnects gets no more events of the trips it was in")
    func disconnectedRiderHearsNothing() async throws {
        let world = try await World(driverCount: 1)
        let created = try await world.createTrip()
        // A second socket of the same rider, opened after the trip exists, joins it on connect.
        let second = await Self.connect(world.hub, world.rider.principal)
        #expect(second.joined == [created.trip.id])
        #expect(await world.hub.tripActor(id: created.trip.id)?.memberCount == 2)

        // The web layer adds the trips a socket created or updated to the ones it joined on connect.
        await world.hub.disconnect(world.rider.principal, mailbox: world.rider.mailbox, joined: [created.trip.id])
        await world.hub.disconnect(second.principal, mailbox: second.mailbox, joined: second.joined)
        #expect(await world.hub.tripActor(id: created.trip.id)?.memberCount == 0)

        _ = try await world.update(created.trip.id, to: .started, by: world.drivers[0])
        #expect(world.rider.mailbox.statuses == [.requested])
        #expect(second.mailbox.events.isEmpty)
    }

    @Test("a driver alerted of a trip who then disconnects hears nothing when another driver takes it")
    func disconnectedAlertedDriverHearsNothing() async throws {
        let world = try await World(driverCount: 2)
        let created = try await world.createTrip()
        let gone = world.drivers[0]
        #expect(gone.mailbox.events == [.trip(created)])
        await world.hub.disconnect(gone.principal, mailbox: gone.mailbox, joined: gone.joined)

        _ = try await world.update(created.trip.id, to: .started, by: world.drivers[1])
        #expect(gone.mailbox.events == [.trip(created)])
    }

    @Test("after restore, connect joins each user to its unfinished trips and to none of its finished ones")
    func connectJoinsUnfinishedTrips() async throws {
        let rider = User(id: 3, username: "rider", firstName: "R", lastName: "R", group: .rider, photo: nil, passwordHash: "h")
        let driver = User(id: 7, username: "driver", firstName: "D", lastName: "D", group: .driver, photo: nil, passwordHash: "h")
        let otherDriver = User(id: 8, username: "other", firstName: "O", lastName: "O", group: .driver, photo: nil, passwordHash: "h")
        let started = Fixture.trip(status: .started, riderID: rider.id, driverID: driver.id)
        let completed = Fixture.trip(status: .completed, riderID: rider.id, driverID: driver.id)
        let requested = Fixture.trip(status: .requested, riderID: rider.id, driverID: nil)
        let stranger = Fixture.trip(status: .inProgress, riderID: 99, driverID: otherDriver.id)

        let hub = Hub()
        hub.restore(users: [rider, driver, otherDriver], trips: [started, completed, requested, stranger])
        #expect(hub.changes.pendingCount == 0, "restored state counts as changed")
        #expect(hub.tripActor(id: completed.id) == nil)
        #expect(hub.index.trip(id: completed.id) == nil)
        // As stored, but for `seq`, which goes on from the clock (`Hub.restartSeq`).
        var restored = try #require(hub.index.trip(id: started.id))
        #expect(restored.seq > started.seq)
        restored.seq = started.seq
        #expect(restored == started)
        #expect(hub.users.user(id: driver.id) == driver)

        let riderSocket = await Self.connect(hub, Principal(userID: rider.id, group: .rider))
        let driverSocket = await Self.connect(hub, Principal(userID: driver.id, group: .driver))
        let otherSocket = await Self.connect(hub, Principal(userID: otherDriver.id, group: .driver))
        #expect(riderSocket.joined == [started.id, requested.id])
        #expect(driverSocket.joined == [started.id])
        #expect(otherSocket.joined == [stranger.id])
        #expect(hub.drivers.count == 2)

        // Joined means the group's events reach the socket.
        let moved = try await hub.updateTrip(
            id: started.id, TripUpdate(status: .completed), by: driverSocket.principal, from: TestMailbox()
        )
        #expect(riderSocket.mailbox.events == [.trip(moved)])
        #expect(driverSocket.mailbox.events == [.trip(moved)])
        #expect(otherSocket.mailbox.events.isEmpty)
        #expect(moved.rider == rider)
        #expect(moved.driver == driver)

        // A trip finished while live, not yet evicted, is not joined either.
        let later = await Self.connect(hub, Principal(userID: rider.id, group: .rider))
        #expect(later.joined == [requested.id])
        let laterDriver = await Self.connect(hub, Principal(userID: driver.id, group: .driver))
        #expect(laterDriver.joined.isEmpty)
    }

    @Test("evictPersisted drops finished trips from memory and keeps every unfinished one")
    func evictDropsFinishedOnly() async throws {
        let world = try await World(driverCount: 1)
        let driver = world.drivers[0]
        let done = try await world.createTrip()
        let moving = try await world.createTrip()
        let waiting = try await world.createTrip()
        _ = try await world.update(done.trip.id, to: .completed, by: driver)
        _ = try await world.update(moving.trip.id, to: .inProgress, by: driver)

        let persisted = world.hub.changes.drain().trips.values
        #expect(persisted.count == 3)
        world.hub.evictPersisted(persisted)

        #expect(world.hub.tripActor(id: done.trip.id) == nil)
        #expect(world.hub.index.trip(id: done.trip.id) == nil)
        #expect(world.hub.index.countsByStatus() == [.inProgress: 1, .requested: 1])
        #expect(Set(world.hub.index.trips(involving: world.rider.principal.userID).map(\.id)) == [moving.trip.id, waiting.trip.id])
        #expect(world.hub.index.trips(involving: driver.principal.userID).map(\.id) == [moving.trip.id])
        #expect(await world.hub.tripActor(id: moving.trip.id)?.current.status == .inProgress)
        #expect(await world.hub.tripActor(id: waiting.trip.id)?.current.status == .requested)

        let gone = await #expect(throws: HubError.self) {
            try await world.update(done.trip.id, to: .completed, by: driver)
        }
        #expect(gone?.code == .notFound)
        // The unfinished ones still work.
        let finished = try await world.update(moving.trip.id, to: .completed, by: driver)
        #expect(finished.trip.status == .completed)
    }
}
