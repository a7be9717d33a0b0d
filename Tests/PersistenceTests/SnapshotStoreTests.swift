import Foundation
import Hub
import Persistence
import TestSupport
import Testing

/// The contract every `SnapshotStore` keeps, run once per store kind.
@Suite("Snapshot store", MachineLoad.shared)
struct SnapshotStoreTests {
    @Test("every field of users and trips round-trips exactly", arguments: StoreKind.allCases)
    func roundTrip(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let users = [
                User(
                    id: 1, username: "zoë_łódź", firstName: "Zoë 🚕", lastName: "東京 O'Brien \"q\"", group: .rider,
                    photo: nil, passwordHash: "$2b$12$abcdefghijklmnopqrstuv"
                ),
                User(
                    id: 2, username: "driver", firstName: "", lastName: "Ünal", group: .driver,
                    photo: "photos/ünal 1.png", passwordHash: "x"
                ),
                User(
                    id: Int(Int32.max) + 7, username: "big", firstName: "B", lastName: "G", group: .operator,
                    photo: "", passwordHash: ""
                ),
            ]
            var trips = [
                Trip(
                    id: UUID(), created: Timestamp(microseconds: 1_764_000_000_000_001),
                    updated: Timestamp(microseconds: 1_764_000_000_999_999), pickUpAddress: "Zürich Hbf 🚉",
                    dropOffAddress: "Place de l'Étoile, 東京", status: .requested, riderID: 1, driverID: nil
                ),
                Trip(
                    id: UUID(), created: Timestamp(microseconds: -1), updated: Timestamp(microseconds: 0),
                    pickUpAddress: "1", dropOffAddress: "2", status: .started, riderID: nil, driverID: 2
                ),
            ]
            for status in TripStatus.allCases {
                trips.append(Samples.trip(status, rider: 1, driver: 2))
            }
            try await store.write(Samples.changes(users: users, trips: trips))

            #expect(try await store.loadUsers() == users)
            for trip in trips {
                #expect(try await store.trip(id: trip.id) == trip)
            }
        }
    }

    @Test("users load ordered by id", arguments: StoreKind.allCases)
    func usersOrdered(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let users = [5, 3, 40, 1, 2].map { Samples.user($0) }
            try await store.write(Samples.changes(users: users))
            #expect(try await store.loadUsers().map(\.id) == [1, 2, 3, 5, 40])
        }
    }

    @Test("writing an existing id updates the row", arguments: StoreKind.allCases)
    func upsert(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            var user = Samples.user(1)
            var trip = Samples.trip(.requested, rider: 1)
            try await store.write(Samples.changes(users: [user], trips: [trip]))

            user.photo = "photos/new.png"
            user.firstName = "Renamed"
            trip.status = .started
            trip.driverID = 9
            trip.updated = Timestamp(microseconds: trip.updated.microseconds + 5_000_001)
            try await store.write(Samples.changes(users: [user], trips: [trip]))

            #expect(try await store.loadUsers() == [user])
            #expect(try await store.trip(id: trip.id) == trip)
        }
    }

    @Test("one write of 20,000 trips and 1,000 users lands fully", arguments: StoreKind.allCases)
    func largeWrite(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let users = (1...1_000).map { Samples.user($0, group: $0.isMultiple(of: 2) ? .driver : .rider) }
            let trips = (0..<20_000).map { index in
                Samples.trip(
                    TripStatus.allCases[index % TripStatus.allCases.count], rider: index % 1_000 + 1,
                    driver: index.isMultiple(of: 3) ? nil : index % 997 + 1,
                    created: Timestamp(microseconds: Samples.now.microseconds + Int64(index))
                )
            }
            try await store.write(Samples.changes(users: users, trips: trips))

            #expect(try await store.loadUsers() == users)
            let unfinished = trips.filter { !$0.status.isFinished }
            let loaded = try await store.loadUnfinishedTrips()
            #expect(loaded.count == unfinished.count)
            #expect(Set(loaded) == Set(unfinished))
            let finished = trips.filter(\.status.isFinished)
            #expect(try await store.trip(id: try #require(finished.last).id) == finished.last)
        }
    }

    @Test("unfinished trips exclude finished ones", arguments: StoreKind.allCases)
    func unfinished(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let trips = TripStatus.allCases.map { Samples.trip($0, driver: 2) }
            try await store.write(Samples.changes(trips: trips))

            let loaded = try await store.loadUnfinishedTrips()
            #expect(Set(loaded) == Set(trips.filter { !$0.status.isFinished }))
            #expect(loaded.allSatisfy { $0.status != .completed })
        }
    }

    @Test("finished trips of a user are those it rode or drove, newest first", arguments: StoreKind.allCases)
    func finishedOfUser(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            func at(_ seconds: Int64) -> Timestamp { Timestamp(microseconds: seconds * 1_000_000 + 7) }
            let rode = Samples.trip(.completed, rider: 7, driver: 2, created: at(10))
            let drove = Samples.trip(.completed, rider: 3, driver: 7, created: at(30))
            let riderOnly = Samples.trip(.completed, rider: 7, driver: nil, created: at(20))
            let unfinished = [
                Samples.trip(.requested, rider: 7, created: at(40)),
                Samples.trip(.inProgress, rider: 3, driver: 7, created: at(50)),
            ]
            let others = [Samples.trip(.completed, rider: 3, driver: 2, created: at(60))]
            try await store.write(Samples.changes(trips: [rode, drove, riderOnly] + unfinished + others))

            #expect(try await store.finishedTrips(involving: 7) == [drove, riderOnly, rode])
            #expect(try await store.finishedTrips(involving: 2) == [others[0], rode])
            #expect(try await store.finishedTrips(involving: 99).isEmpty)
        }
    }

    @Test("trip(id:) finds finished and unfinished trips, nil for an unknown id", arguments: StoreKind.allCases)
    func tripByID(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let open = Samples.trip(.inProgress, driver: 2)
            let done = Samples.trip(.completed, driver: 2)
            try await store.write(Samples.changes(trips: [open, done]))

            #expect(try await store.trip(id: open.id) == open)
            #expect(try await store.trip(id: done.id) == done)
            #expect(try await store.trip(id: UUID()) == nil)
        }
    }

    @Test("an empty change set writes nothing, not even to the schema", arguments: StoreKind.allCases)
    func emptyWrite(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let unmigrated = try fixture.openUnmigrated()
            try await unmigrated.write(ChangeSet())
            await #expect(throws: (any Error).self) {
                try await unmigrated.write(Samples.changes(users: [Samples.user(1)]))
            }
        }
    }

    @Test("migrating twice is harmless", arguments: StoreKind.allCases)
    func migrateTwice(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let user = Samples.user(1)
            try await store.write(Samples.changes(users: [user]))
            try await store.migrate()
            try await fixture.open().migrate()
            #expect(try await store.loadUsers() == [user])
        }
    }

    @Test("data survives closing and reopening the store", arguments: StoreKind.allCases)
    func reopen(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let user = Samples.user(1, photo: "photos/a.png")
            let open = Samples.trip(.started, driver: 1)
            let done = Samples.trip(.completed, driver: 1)
            try await Self.writeAndClose(Samples.changes(users: [user], trips: [open, done]), with: fixture)

            let reopened = try await fixture.open()
            #expect(try await reopened.loadUsers() == [user])
            #expect(try await reopened.loadUnfinishedTrips() == [open])
            #expect(try await reopened.finishedTrips(involving: 1) == [done])
        }
    }

    /// Writes through a store that is released, and so closed, when this returns.
    private static func writeAndClose(_ changes: ChangeSet, with fixture: StoreFixture) async throws {
        let store = try await fixture.open()
        try await store.write(changes)
    }
}
