import Foundation
import Synchronization
import Testing

@testable import Hub
import TestSupport

/// A commit log's storage for tests: records every batch written, and can hold writes back
/// (until `open`) or fail them.
final class TestCommitStorage: Sendable {
    private struct State {
        var written: [[DurableChange]] = []
        var isOpen = true
        var waiting: [CheckedContinuation<Void, Never>] = []
        var failing = false
    }

    private let state = Mutex(State())

    /// Trip states (id and `seq`) and user ids written so far.
    private let durableTrips = Mutex<Set<String>>([])

    init(open: Bool = true) {
        state.withLock { $0.isOpen = open }
    }

    /// A commit log that writes here.
    func makeLog() -> GroupCommitLog {
        GroupCommitLog(write: { batch in try await self.write(batch) })
    }

    func write(_ batch: [DurableChange]) async throws {
        let mustWait = state.withLock { !$0.isOpen }
        if mustWait {
            await withCheckedContinuation { continuation in
                let openNow = state.withLock { state in
                    if state.isOpen { return true }
                    state.waiting.append(continuation)
                    return false
                }
                if openNow { continuation.resume() }
            }
        }
        if state.withLock({ $0.failing }) { throw TestStorageFailure() }
        durableTrips.withLock { durable in
            for case .trip(let trip) in batch { durable.insert(Self.key(trip.id, trip.seq)) }
        }
        state.withLock { $0.written.append(batch) }
    }

    /// Lets held writes (and every later one) through.
    func open() {
        let waiting = state.withLock { state in
            state.isOpen = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Makes every write from now on fail.
    func fail() {
        state.withLock { $0.failing = true }
    }

    var batches: [[DurableChange]] { state.withLock { $0.written } }

    /// True when this state of the trip was written.
    func isDurable(_ trip: Trip) -> Bool {
        durableTrips.withLock { $0.contains(Self.key(trip.id, trip.seq)) }
    }

    private static func key(_ id: UUID, _ seq: Int64) -> String { "\(id.uuidString)#\(seq)" }
}

struct TestStorageFailure: Error {}

/// A socket stand-in that checks, the moment it is handed a trip state, that the state was
/// written to the commit log's storage: no client may hear of a change before it is durable.
final class DurabilityCheckingMailbox: Mailbox {
    let connectionID: ConnectionID
    private let storage: TestCommitStorage
    private let received = Mutex<[HubEvent]>([])
    private let early = Mutex<[HubEvent]>([])

    init(storage: TestCommitStorage) {
        self.storage = storage
        connectionID = TestMailbox().connectionID
    }

    func deliver(_ event: HubEvent) {
        if case .trip(let view) = event, !storage.isDurable(view.trip) { early.withLock { $0.append(event) } }
        received.withLock { $0.append(event) }
    }

    func replay(_ events: [HubEvent]) {
        for event in events { deliver(event) }
    }

    var events: [HubEvent] { received.withLock { $0 } }
    /// Trip states delivered before they were durable (must stay empty).
    var heardEarly: [HubEvent] { early.withLock { $0 } }
    var statuses: [TripStatus] {
        events.compactMap { if case .trip(let view) = $0 { view.trip.status } else { nil } }
    }
}

@Suite("Commit before acknowledge: no event and no answer before the change is durable", MachineLoad.shared)
struct CommitBeforeAckTests {
    struct World {
        let storage: TestCommitStorage
        let hub: Hub
        let rider: Principal
        let riderBox: DurabilityCheckingMailbox
        let drivers: [(Principal, DurabilityCheckingMailbox)]

        init(drivers count: Int, open: Bool = true) async throws {
            storage = TestCommitStorage(open: open)
            hub = Hub(commitLog: storage.makeLog())
            rider = try Fixture.user(hub.users, "rider", .rider)
            riderBox = DurabilityCheckingMailbox(storage: storage)
            _ = await hub.connect(rider, mailbox: riderBox)
            var drivers: [(Principal, DurabilityCheckingMailbox)] = []
            for n in 0..<count {
                let driver = try Fixture.user(hub.users, "driver\(n)", .driver)
                let box = DurabilityCheckingMailbox(storage: storage)
                _ = await hub.connect(driver, mailbox: box)
                drivers.append((driver, box))
            }
            self.drivers = drivers
        }

        func accept(_ id: UUID, by index: Int) async throws(HubError) -> TripView {
            let (driver, box) = drivers[index]
            return try await hub.updateTrip(
                id: id, TripUpdate(status: .started, riderID: rider.userID, driverID: driver.userID), by: driver, from: box
            )
        }
    }

    @Test("a created trip reaches no one, and create.trip does not return, until its commit is written")
    func createWaitsForCommit() async throws {
        let world = try await World(drivers: 3, open: false)
        let created = Task { try await world.hub.createTrip(Fixture.request, by: world.rider, from: world.riderBox) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(world.riderBox.events.isEmpty)
        #expect(world.drivers.allSatisfy { $0.1.events.isEmpty })
        #expect(world.storage.batches.isEmpty)

        world.storage.open()
        let view = try await created.value
        #expect(world.storage.isDurable(view.trip))
        try await waitUntil { world.riderBox.events.count == 1 && world.drivers.allSatisfy { $0.1.events.count == 1 } }
        #expect(world.riderBox.events == [.trip(view)])
        #expect(world.riderBox.heardEarly.isEmpty)
    }

    @Test("locations after an accept wait behind it, so the rider hears STARTED first, then the fixes in order")
    func locationsWaitBehindTheirStateChange() async throws {
        let world = try await World(drivers: 1)
        let view = try await world.hub.createTrip(Fixture.request, by: world.rider, from: world.riderBox)
        world.storage.close()
        let accept = Task { try await world.accept(view.trip.id, by: 0) }
        let (driver, box) = world.drivers[0]
        try await waitUntil { await world.hub.tripActor(id: view.trip.id)?.current.status == .started }
        for step in 1...5 {
            let fix = LocationFix(point: GeoPoint(lat: 37.0 + Double(step) / 1000, lng: -122), heading: nil, speed: nil, accuracy: nil, timestamp: .now())
            try await world.hub.recordAndSettle(fix, by: driver, from: box)
        }
        try await Task.sleep(for: .milliseconds(30))
        #expect(world.riderBox.statuses == [.requested])
        #expect(world.riderBox.events.count == 1)

        world.storage.open()
        _ = try await accept.value
        try await waitUntil { world.riderBox.events.count == 7 }
        let seqs = world.riderBox.events.map(\.seq)
        #expect(seqs == seqs.sorted())
        #expect(world.riderBox.statuses == [.requested, .started])
        if case .trip(let started) = world.riderBox.events[1] { #expect(started.trip.status == .started) } else { Issue.record("second event is not the accept") }
        #expect(world.riderBox.heardEarly.isEmpty)
    }

    @Test("changes made while a commit runs share the next one")
    func commitsAreGrouped() async throws {
        let world = try await World(drivers: 0, open: false)
        let riders = try (0..<50).map { try Fixture.user(world.hub.users, "r\($0)", .rider) }
        // The sign-ups above went to the snapshot tracker only; the trips go through the log.
        try await withThrowingTaskGroup(of: TripView.self) { group in
            for rider in riders {
                group.addTask { try await world.hub.createTrip(Fixture.request, by: rider, from: TestMailbox()) }
            }
            try await Task.sleep(for: .milliseconds(50))
            world.storage.open()
            for try await view in group { #expect(world.storage.isDurable(view.trip)) }
        }
        let sizes = world.storage.batches.map(\.count)
        #expect(sizes.reduce(0, +) == 50)
        #expect(sizes.count < 50)
        #expect(sizes.max()! > 1)
    }

    @Test("a failed commit answers unavailable, and its change and everything after it reach no one")
    func failedCommitIsNeverAcknowledged() async throws {
        let world = try await World(drivers: 2)
        let view = try await world.hub.createTrip(Fixture.request, by: world.rider, from: world.riderBox)
        try await waitUntil { world.drivers.allSatisfy { $0.1.events.count == 1 } }
        world.storage.fail()
        await #expect(throws: HubError.self) { try await world.accept(view.trip.id, by: 0) }
        do {
            _ = try await world.hub.createTrip(Fixture.request, by: world.rider, from: world.riderBox)
            Issue.record("a create after the log failed was acknowledged")
        } catch {
            #expect(error.code == .unavailable)
        }
        try await Task.sleep(for: .milliseconds(30))
        #expect(world.riderBox.statuses == [.requested])
        #expect(world.drivers.allSatisfy { $0.1.statuses == [.requested] })
    }

    @Test("a loser hears trip_taken only once the winner's accept is durable; if it never is, unavailable")
    func refusalsWaitForTheStateTheyJudged() async throws {
        for commitFails in [false, true] {
            let world = try await World(drivers: 2)
            let view = try await world.hub.createTrip(Fixture.request, by: world.rider, from: world.riderBox)
            world.storage.close()
            let winner = Task { () -> HubError? in
                do throws(HubError) { _ = try await world.accept(view.trip.id, by: 0); return nil } catch { return error }
            }
            try await waitUntil { await world.hub.tripActor(id: view.trip.id)?.current.status == .started }
            let loser = Task { () -> HubError? in
                do throws(HubError) { _ = try await world.accept(view.trip.id, by: 1); return nil } catch { return error }
            }
            try await Task.sleep(for: .milliseconds(30))
            #expect(world.drivers[1].1.statuses == [.requested], "the loser heard nothing yet")
            if commitFails { world.storage.fail() }
            world.storage.open()
            let (won, lost) = (await winner.value, await loser.value)
            if commitFails {
                #expect(won?.code == .unavailable)
                #expect(lost?.code == .unavailable, "refused against a state that never became durable")
            } else {
                #expect(won == nil)
                #expect(lost?.code == .tripTaken)
            }
        }
    }

    @Test("a sign-up returns once the account is durable; a failed log refuses it")
    func signUpIsDurable() async throws {
        let storage = TestCommitStorage()
        let directory = UserDirectory(changes: ChangeTracker(), commitLog: storage.makeLog())
        let user = try #require(
            try await directory.signUp(username: "ann", firstName: "A", lastName: "B", group: .rider, photo: nil, passwordHash: "h")
        )
        #expect(storage.batches.flatMap { $0 } == [.user(user)])
        storage.fail()
        await #expect(throws: HubError.self) {
            _ = try await directory.signUp(username: "bob", firstName: "B", lastName: "C", group: .rider, photo: nil, passwordHash: "h")
        }
    }

    @Test("200 trips raced by 8 drivers each over a slow log: one winner each, and nobody hears a state before it is durable")
    func racesOverASlowLog() async throws {
        let storage = TestCommitStorage()
        let slow = GroupCommitLog(write: { batch in
            try await Task.sleep(for: .microseconds(Int.random(in: 0...2_000)))
            try await storage.write(batch)
        })
        let hub = Hub(commitLog: slow)
        let rider = try Fixture.user(hub.users, "rider", .rider)
        let riderBox = DurabilityCheckingMailbox(storage: storage)
        _ = await hub.connect(rider, mailbox: riderBox)
        var drivers: [(Principal, DurabilityCheckingMailbox)] = []
        for n in 0..<8 {
            let driver = try Fixture.user(hub.users, "d\(n)", .driver)
            let box = DurabilityCheckingMailbox(storage: storage)
            _ = await hub.connect(driver, mailbox: box)
            drivers.append((driver, box))
        }
        let trips = try await withThrowingTaskGroup(of: TripView.self) { group in
            for _ in 0..<200 { group.addTask { try await hub.createTrip(Fixture.request, by: rider, from: riderBox) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let winners = await withTaskGroup(of: (UUID, Int?).self) { group in
            for trip in trips {
                for (driver, box) in drivers {
                    group.addTask {
                        do {
                            let view = try await hub.updateTrip(
                                id: trip.trip.id, TripUpdate(status: .started, riderID: rider.userID, driverID: driver.userID),
                                by: driver, from: box
                            )
                            // The answer came back: the winning state is durable by now.
                            #expect(storage.isDurable(view.trip))
                            return (trip.trip.id, driver.userID)
                        } catch {
                            return (trip.trip.id, nil)
                        }
                    }
                }
            }
            return await group.reduce(into: [UUID: [Int]]()) { winners, result in
                if let driver = result.1 { winners[result.0, default: []].append(driver) }
            }
        }
        // Each driver drives one trip at a time: 8 drivers win at most 8 trips, each trip once.
        #expect(winners.values.allSatisfy { $0.count == 1 })
        #expect(winners.count == 8)
        try await waitUntil { riderBox.statuses.filter { $0 == .started }.count == 8 }
        #expect(riderBox.heardEarly.isEmpty)
        #expect(drivers.allSatisfy { $0.1.heardEarly.isEmpty })
    }
}

extension TestCommitStorage {
    /// Holds writes back from now on, until `open`.
    func close() {
        state.withLock { $0.isOpen = false }
    }
}

/// Polls `condition` every millisecond for up to 5 s.
func waitUntil(_ condition: @Sendable () async -> Bool) async throws {
    for _ in 0..<5_000 {
        if await condition() { return }
        try await Task.sleep(for: .milliseconds(1))
    }
    Issue.record("condition not met within 5 s")
}
