import Foundation
import Hub
import TestSupport
import Testing

@testable import Persistence

/// Why a trip was canceled (`Trip.cancelReason`: a rider's cancel, or no driver found) is kept
/// everywhere a trip is: in both stores' `cancel_reason` column and in the journal.
@Suite("Cancel reasons in the stores and the journal", MachineLoad.shared)
struct CancelReasonStoreTests {
    static func canceled(_ reason: CancelReason?, rider: Int = 1) -> Trip {
        var trip = Samples.trip(.canceled, rider: rider)
        trip.cancelReason = reason
        trip.seq = 2
        return trip
    }

    @Test("each reason, and none, round-trips through the store: by id, among finished trips, and after an update", arguments: StoreKind.allCases)
    func roundTrip(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let trips = [Self.canceled(.noDriverFound), Self.canceled(.riderCanceled), Self.canceled(nil)]
            var waiting = Samples.trip(.requested, rider: 1)
            try await store.write(Samples.changes(trips: trips + [waiting]))
            for trip in trips {
                #expect(try await store.trip(id: trip.id) == trip)
            }
            #expect(Set(try await store.finishedTrips(involving: 1)) == Set(trips))
            #expect(try await store.loadUnfinishedTrips() == [waiting])
            #expect(try await store.loadUnfinishedTrips().first?.cancelReason == nil)

            // A waiting trip that ends without a driver: the same row takes the reason.
            waiting.status = .canceled
            waiting.cancelReason = .noDriverFound
            waiting.seq = 2
            try await store.write(Samples.changes(trips: [waiting]))
            #expect(try await store.trip(id: waiting.id)?.cancelReason == .noDriverFound)
            #expect(try await store.loadUnfinishedTrips().isEmpty)
        }
    }

    @Test("a value no store writes is refused when read, naming the row", arguments: StoreKind.allCases)
    func unreadableReason(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let trip = Self.canceled(.riderCanceled)
            try await store.write(Samples.changes(trips: [trip]))
            try await fixture.execute("UPDATE trips SET cancel_reason = 'bored' WHERE status = 'CANCELED'")
            await #expect(throws: SnapshotStoreError.self) { try await store.trip(id: trip.id) }
        }
    }

    @Test("the journal keeps the reason, and reads a record written before there was one")
    func journal() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let changes: [DurableChange] = [.trip(Self.canceled(.noDriverFound)), .trip(Self.canceled(.riderCanceled)), .trip(Self.canceled(nil))]
        let journal = try TripJournal(directory: folder.path)
        try await journal.append(changes)
        #expect(try await TripJournal(directory: folder.path).replay().changes == changes)

        // An older hub's record: a trip without the key decodes with no reason.
        let trip = Self.canceled(.riderCanceled)
        var object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(DurableChange.trip(trip))) as? [String: Any])
        var payload = try #require(object["trip"] as? [String: Any])
        var fields = try #require(payload["_0"] as? [String: Any])
        #expect(fields["cancelReason"] as? String == "rider_canceled")
        fields["cancelReason"] = nil
        payload["_0"] = fields
        object["trip"] = payload
        let old = try JSONDecoder().decode(DurableChange.self, from: JSONSerialization.data(withJSONObject: object))
        var expected = trip
        expected.cancelReason = nil
        #expect(old == .trip(expected))
    }
}
