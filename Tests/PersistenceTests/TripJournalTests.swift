import Foundation
import Hub
import TestSupport
import Testing

@testable import Persistence

@Suite("The write-ahead journal: durable appends, segments, replay, and recovery into the store", MachineLoad.shared)
struct TripJournalTests {
    static func withFolder(_ body: (String) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try await body(folder.path)
    }

    static func trip(_ status: TripStatus, seq: Int64, id: UUID, driver: Int? = nil) -> Trip {
        var trip = Samples.trip(status, driver: driver, id: id)
        trip.seq = seq
        return trip
    }

    @Test("what was appended is replayed in order, across segments, by a journal opened later")
    func appendAndReplay() async throws {
        try await Self.withFolder { folder in
            let id = UUID()
            let changes: [DurableChange] = [
                .user(Samples.user(1)), .trip(Self.trip(.requested, seq: 1, id: id)),
                .trip(Self.trip(.started, seq: 2, id: id, driver: 2)),
            ]
            let journal = try TripJournal(directory: folder)
            try await journal.append(Array(changes.prefix(2)))
            #expect(await journal.rotate() == 1)
            try await journal.append([changes[2]])
            // A crash: the next process opens the same folder and reads everything.
            let reopened = try TripJournal(directory: folder)
            let replay = try await reopened.replay()
            #expect(replay.changes == changes)
            #expect(replay.through == 2)
        }
    }

    @Test("a snapshot's rotate and drop delete only closed segments, never the one being written")
    func rotateAndDrop() async throws {
        try await Self.withFolder { folder in
            let journal = try TripJournal(directory: folder)
            #expect(await journal.rotate() == 0, "nothing written yet: nothing to close")
            try await journal.append([.user(Samples.user(1))])
            let closed = await journal.rotate()
            try await journal.append([.user(Samples.user(2))])
            try await journal.dropSegments(through: closed)
            try await journal.dropSegments(through: 99)
            let replay = try await TripJournal(directory: folder).replay()
            #expect(replay.changes == [.user(Samples.user(2))])
        }
    }

    @Test("a record cut short or damaged by a crash ends the replay of its segment; earlier records stay")
    func tornTail() async throws {
        try await Self.withFolder { folder in
            let journal = try TripJournal(directory: folder)
            try await journal.append([.user(Samples.user(1))])
            try await journal.append([.user(Samples.user(2))])
            let segment = TripJournal.url(of: 1, in: journal.directory)
            let whole = try Data(contentsOf: segment)
            for cut in [1, 5, 13] {
                try whole.prefix(whole.count - cut).write(to: segment)
                #expect(try await TripJournal(directory: folder).replay().changes == [.user(Samples.user(1))])
            }
            var damaged = whole
            damaged[damaged.count - 3] ^= 0xFF
            try damaged.write(to: segment)
            #expect(try await TripJournal(directory: folder).replay().changes == [.user(Samples.user(1))])
        }
    }

    @Test("garbage in the journal folder is ignored, and random bytes as a segment replay as nothing")
    func garbage() async throws {
        try await Self.withFolder { folder in
            let journal = try TripJournal(directory: folder)
            try Data("not a segment".utf8).write(to: journal.directory.appendingPathComponent("notes.txt"))
            var random = SystemRandomNumberGenerator()
            try Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &random) })
                .write(to: TripJournal.url(of: 7, in: journal.directory))
            #expect(try await TripJournal(directory: folder).replay().changes == [])
        }
    }

    @Test("recovery writes what the store lacks, never over a newer stored state, then empties the journal", arguments: StoreKind.allCases)
    func recovery(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let (kept, lost, fresh) = (UUID(), UUID(), UUID())
            // The store already has a later state of `kept` than the journal (a snapshot wrote it
            // after the journal's record), and an older state of `lost`.
            try await store.write(
                ChangeSet(
                    users: [1: Samples.user(1)],
                    trips: [kept: Self.trip(.inProgress, seq: 5, id: kept, driver: 2), lost: Self.trip(.requested, seq: 1, id: lost)]
                )
            )
            try await Self.withFolder { folder in
                let journal = try TripJournal(directory: folder)
                try await journal.append([
                    .user(Samples.user(1)), .user(Samples.user(2, group: .driver)),
                    .trip(Self.trip(.started, seq: 3, id: kept, driver: 2)),
                    .trip(Self.trip(.started, seq: 2, id: lost, driver: 2)),
                    .trip(Self.trip(.requested, seq: 1, id: fresh)),
                    .trip(Self.trip(.canceled, seq: 2, id: fresh)),
                ])
                let outcome = try await JournalRecovery.recover(journal: TripJournal(directory: folder), into: store)
                #expect(outcome.trips == 2)
                #expect(outcome.users == 1)
                #expect(outcome.skipped == 2)
                #expect(try await store.trip(id: kept)?.status == .inProgress)
                #expect(try await store.trip(id: lost)?.status == .started)
                #expect(try await store.trip(id: lost)?.driverID == 2)
                #expect(try await store.trip(id: fresh)?.status == .canceled)
                #expect(try await store.loadUsers().map(\.id) == [1, 2])
                #expect(try await TripJournal(directory: folder).replay().changes == [])
            }
        }
    }
}
