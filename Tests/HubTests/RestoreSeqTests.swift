import Foundation
import Synchronization
import Testing

@testable import Hub
import TestSupport

/// A clock the test moves by hand.
final class TestClock: HubClock {
    private let micros: Mutex<Int64>

    init(_ start: Timestamp = Fixture.epoch) {
        micros = Mutex(start.microseconds)
    }

    func now() -> Timestamp { Timestamp(microseconds: micros.withLock { $0 }) }

    func advance(seconds: Int64) {
        micros.withLock { $0 += seconds * 1_000_000 }
    }
}

/// `seq` across a crash that lost changes clients had already seen (docs/protocol.md §3.1).
@Suite("seq after a restore", MachineLoad.shared)
struct RestoreSeqTests {
    static func fix(_ n: Int, at now: Timestamp) -> LocationFix {
        LocationFix(point: GeoPoint(lat: 52.52 + Double(n) * 1e-5, lng: 13.405), heading: 90, speed: 8, accuracy: 5, timestamp: now)
    }

    /// A rider and a driver, each connected, and a trip of the rider the driver accepted (seq 2).
    static func startedTrip(on hub: Hub) async throws
        -> (rider: Principal, riderSocket: TestMailbox, driver: Principal, driverSocket: TestMailbox, trip: UUID, started: TripView)
    {
        let rider = try Fixture.user(hub.users, "rider", .rider)
        let driver = try Fixture.user(hub.users, "driver", .driver)
        let riderSocket = TestMailbox()
        let driverSocket = TestMailbox()
        _ = await hub.connect(rider, mailbox: riderSocket)
        _ = await hub.connect(driver, mailbox: driverSocket)
        let trip = try await hub.createTrip(Fixture.request, by: rider, from: riderSocket).trip.id
        let started = try await hub.updateTrip(id: trip, TripUpdate(status: .started), by: driver, from: driverSocket)
        return (rider, riderSocket, driver, driverSocket, trip, started)
    }

    @Test("a restored trip goes on from the largest of its stored seq, its track's and the clock in microseconds")
    func restartSeq() throws {
        let clock = TestClock(Timestamp(microseconds: 100))
        let hub = Hub(clock: clock)
        var trip = Fixture.trip(status: .started, riderID: 1, driverID: 2)
        trip.seq = 2
        let track = (3...9).map { TrackPoint(tripID: trip.id, seq: Int64($0), fix: Self.fix($0, at: Fixture.epoch)) }
        #expect(hub.restartSeq(of: trip, track: []) == 100)
        #expect(hub.restartSeq(of: trip, track: track) == 100)
        trip.seq = 150
        #expect(hub.restartSeq(of: trip, track: track) == 150)
        let far = [TrackPoint(tripID: trip.id, seq: 400, fix: Self.fix(0, at: Fixture.epoch))]
        #expect(hub.restartSeq(of: trip, track: far) == 400)

        let restarted = Hub(clock: TestClock())
        restarted.restore(users: [], trips: [trip], tracks: [trip.id: track])
        #expect(restarted.index.trip(id: trip.id)?.seq == Fixture.epoch.microseconds)
    }

    @Test("after a crash that lost seen changes, no seq is issued again with other content, and resume gets the current state")
    func noSeqReusedAfterCrash() async throws {
        let clock = TestClock()
        let first = Hub(clock: clock)
        let (riderUser, rider, driverUser, driver, trip, _) = try await Self.startedTrip(on: first)
        // The last successful snapshot: the trip STARTED at seq 2.
        let snapshot = first.changes.drain()
        // Acknowledged and seen, then lost in the crash: three locations and IN_PROGRESS.
        for n in 0..<3 { try await first.recordAndSettle(Self.fix(n, at: clock.now()), by: driverUser, from: driver) }
        _ = try await first.updateTrip(id: trip, TripUpdate(status: .inProgress), by: driverUser, from: driver)
        let seenBefore = rider.events
        #expect(seenBefore.map(\.seq) == [1, 2, 3, 4, 5, 6])

        // The crash; the hub restarts from the snapshot a second later.
        clock.advance(seconds: 1)
        let restartTime = clock.now().microseconds
        let second = Hub(clock: clock)
        second.restore(users: Array(snapshot.users.values), trips: Array(snapshot.trips.values), tracks: [:])
        let actor = try #require(second.tripActor(id: trip))
        #expect(await actor.current.seq == restartTime)

        let riderAgain = TestMailbox()
        let driverAgain = TestMailbox()
        #expect(await second.connect(riderUser, mailbox: riderAgain) == [trip])
        _ = await second.connect(driverUser, mailbox: driverAgain)
        // The rider saw seq 6; the restored history does not reach back: the trip's current state.
        let reply = try await second.resume(tripID: trip, after: 6, by: riderUser, from: riderAgain)
        guard case .currentState(.trip(let state)) = reply else {
            Issue.record("expected the current state, got \(reply)")
            return
        }
        #expect(state.trip.status == .started && state.trip.seq == restartTime)
        try await second.recordAndSettle(Self.fix(9, at: clock.now()), by: driverUser, from: driverAgain)
        let moved = try await second.updateTrip(id: trip, TripUpdate(status: .inProgress), by: driverUser, from: driverAgain)
        #expect(riderAgain.events.map(\.seq) == [restartTime, restartTime + 1, restartTime + 2])
        #expect(moved.trip.seq == restartTime + 2)

        // A client that keeps the seqs it saw (the browser's SeqBook) takes every new event, and
        // every (trip, seq) names one event only.
        var book: [Int64: HubEvent] = [:]
        for event in seenBefore + riderAgain.events {
            #expect(book[event.seq] == nil, "seq \(event.seq) delivered twice")
            book[event.seq] = event
        }

        // A second crash before any snapshot: the clock, not the store, keeps the numbers apart.
        clock.advance(seconds: 1)
        let third = Hub(clock: clock)
        third.restore(users: Array(snapshot.users.values), trips: Array(snapshot.trips.values), tracks: [:])
        let seqAfterSecondCrash = try #require(third.index.trip(id: trip)?.seq)
        #expect(seqAfterSecondCrash > moved.trip.seq)
        let resumed = TestMailbox()
        _ = await third.connect(riderUser, mailbox: resumed)
        _ = try await third.resume(tripID: trip, after: moved.trip.seq, by: riderUser, from: resumed)
        #expect(resumed.events.map(\.seq) == [seqAfterSecondCrash])
    }

    @Test("a current state resume sends carries the seq of that state, not of a later location, and follows live events")
    func currentStateCarriesItsOwnSeq() async throws {
        var settings = Hub.Settings()
        settings.historyLength = 4
        let clock = TestClock()
        let hub = Hub(settings: settings, clock: clock)
        let (riderUser, rider, driverUser, driver, trip, started) = try await Self.startedTrip(on: hub)
        await hub.disconnect(riderUser, mailbox: rider, joined: [trip])
        for n in 0..<10 { try await hub.recordAndSettle(Self.fix(n, at: clock.now()), by: driverUser, from: driver) }

        let again = TestMailbox()
        _ = await hub.connect(riderUser, mailbox: again)
        // A live location reaches the new connection before its `resume`.
        try await hub.recordAndSettle(Self.fix(10, at: clock.now()), by: driverUser, from: driver)
        let reply = try await hub.resume(tripID: trip, after: 1, by: riderUser, from: again)
        #expect(reply == .currentState(.trip(started)))
        #expect(again.events.map(\.seq) == [started.trip.seq + 11, started.trip.seq])
        #expect(again.events.last == .trip(started), "the same seq, the same content as the live state change")
    }
}
