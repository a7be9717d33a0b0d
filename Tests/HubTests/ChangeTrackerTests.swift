import Foundation
import Testing

@testable import Hub
import TestSupport

@Suite("ChangeTracker: the latest value of every changed entity, for the snapshot loop", MachineLoad.shared)
struct ChangeTrackerTests {
    static func user(_ id: Int, firstName: String) -> User {
        User(id: id, username: "user\(id)", firstName: firstName, lastName: "L", group: .rider, photo: nil, passwordHash: "h")
    }

    @Test("record keeps the latest value per entity and drain takes everything, leaving it empty")
    func recordAndDrain() {
        let tracker = ChangeTracker()
        let id = UUID()
        tracker.record(Fixture.trip(id: id, status: .requested))
        tracker.record(Fixture.trip(id: id, status: .started, driverID: 10))
        tracker.record(Fixture.trip(status: .requested))
        tracker.record(Self.user(1, firstName: "old"))
        tracker.record(Self.user(1, firstName: "new"))
        #expect(tracker.pendingCount == 3)

        let set = tracker.drain()
        #expect(set.trips.count == 2)
        #expect(set.trips[id]?.status == .started)
        #expect(set.users == [1: Self.user(1, firstName: "new")])
        #expect(tracker.pendingCount == 0)
        #expect(tracker.drain().isEmpty)
    }

    @Test("restore gives back a failed write without overwriting values recorded since the drain")
    func restoreKeepsNewerValues() {
        let tracker = ChangeTracker()
        let newerTrip = UUID()
        let untouchedTrip = UUID()
        tracker.record(Fixture.trip(id: newerTrip, status: .started, driverID: 10))
        tracker.record(Fixture.trip(id: untouchedTrip, status: .requested))
        tracker.record(Self.user(1, firstName: "old"))
        tracker.record(Self.user(2, firstName: "untouched"))
        let failed = tracker.drain()

        // Changes made while the write was failing.
        let newer = Fixture.trip(id: newerTrip, status: .inProgress, driverID: 10)
        tracker.record(newer)
        tracker.record(Self.user(1, firstName: "new"))
        tracker.restore(failed)

        let retry = tracker.drain()
        #expect(retry.trips[newerTrip] == newer)
        #expect(retry.trips[untouchedTrip] == failed.trips[untouchedTrip])
        #expect(retry.users[1] == Self.user(1, firstName: "new"))
        #expect(retry.users[2] == Self.user(2, firstName: "untouched"))
        #expect(retry.count == 4)
    }

    @Test("restore into an empty tracker brings every change back")
    func restoreIntoEmpty() {
        let tracker = ChangeTracker()
        tracker.record(Fixture.trip(status: .requested))
        tracker.record(Self.user(1, firstName: "a"))
        let failed = tracker.drain()
        tracker.restore(failed)
        #expect(tracker.drain() == failed)
    }
}
