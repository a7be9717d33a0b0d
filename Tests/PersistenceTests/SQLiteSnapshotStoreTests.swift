import Foundation
import GRDB
import Hub
import TestSupport
import Testing
@testable import Persistence

/// What only the SQLite store promises: where its file lives, its journal mode, how it treats
/// rows it did not write, and where its snapshot writes run.
@Suite("SQLite snapshot store", MachineLoad.shared)
struct SQLiteSnapshotStoreTests {
    @Test("creates its missing directory and a WAL database file there")
    func createsFile() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let directory = fixture.location.appendingPathComponent("nested/data")
            let store = try SQLiteSnapshotStore(directory: directory.path)
            try await store.migrate()
            let path = directory.appendingPathComponent(SQLiteSnapshotStore.fileName).path
            #expect(FileManager.default.fileExists(atPath: path))
            let mode = try await DatabaseQueue(path: path).read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
            #expect(mode == "wal")
        }
    }

    @Test("an unknown status in the database is reported as an error")
    func unknownStatus() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = try await fixture.open()
            let id = UUID()
            let path = fixture.location.appendingPathComponent(SQLiteSnapshotStore.fileName).path
            try await DatabaseQueue(path: path).write { db in
                try db.execute(
                    sql: """
                        INSERT INTO trips (id, created, updated, pick_up_address, drop_off_address, status)
                        VALUES (?, 1, 2, 'A', 'B', 'CANCELLED')
                        """,
                    arguments: [id.uuidString.lowercased()]
                )
            }
            let expected = SnapshotStoreError.unreadableValue(
                table: "trips", column: "status", rowID: id.uuidString.lowercased(), value: "CANCELLED"
            )
            await #expect(throws: expected) { try await store.trip(id: id) }
            await #expect(throws: expected) { try await store.loadUnfinishedTrips() }
        }
    }

    @Test("trip ids are stored as lowercase strings")
    func lowercaseIDs() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = try await fixture.open()
            let trip = Samples.trip()
            try await store.write(Samples.changes(trips: [trip]))
            let path = fixture.location.appendingPathComponent(SQLiteSnapshotStore.fileName).path
            let stored = try await DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "SELECT id FROM trips") }
            #expect(stored == [trip.id.uuidString.lowercased()])
        }
    }

    @Test("snapshot writes run on the store's own thread, at a lower priority than the caller's")
    func writerThread() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = try #require(try await fixture.open() as? SQLiteSnapshotStore)
            try await store.write(Samples.changes(trips: [Samples.trip()]))
            let base = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            let (thread, niceness, trips) = try await store.writer.write { db in
                (pthread_self(), getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0), try Int.fetchOne(db, sql: "SELECT count(*) FROM trips"))
            }
            #expect(trips == 1)
            #expect(thread == store.writer.threadID)
            #expect(niceness == min(19, base + 10))
        }
    }

    @Test("a row SQLite refuses fails the whole write with SQLite's error, and nothing of it lands")
    func refusedRow() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = try #require(try await fixture.open() as? SQLiteSnapshotStore)
            let upsert = SQLiteUpsert(table: "driver_positions", columns: ["driver_id", "lat", "lng", "heading", "speed", "accuracy", "recorded"])
            let good: [DatabaseValue] = [1.databaseValue, 52.5.databaseValue, "13.4".databaseValue, .null, .null, 3.5.databaseValue, 7.databaseValue]
            let refused: [DatabaseValue] = [2.databaseValue, .null, 13.4.databaseValue, .null, .null, .null, 7.databaseValue]
            await #expect {
                try await store.writer.write { db in try upsert.execute([good, refused], in: db) }
            } throws: { error in
                (error as? DatabaseError)?.resultCode == .SQLITE_CONSTRAINT
            }
            let rows = try await store.writer.write { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM driver_positions") }
            #expect(rows == 0)
            // The same statement, used again, binds afresh.
            try await store.writer.write { db in try upsert.execute([good], in: db) }
            let stored = try await store.writer.write { db in
                try Row.fetchOne(db, sql: "SELECT driver_id, lat, lng, heading, accuracy FROM driver_positions").map { Array($0.databaseValues) }
            }
            // The text "13.4" became a number, as SQLite's column affinity makes it.
            #expect(stored == [1.databaseValue, 52.5.databaseValue, 13.4.databaseValue, .null, 3.5.databaseValue])
        }
    }
}

