import BenchSupport
import Foundation
import Hub
import Persistence

/// Part 1: how long one snapshot of N changed trips takes to write — `SnapshotStore.write`, one
/// transaction — into PostgreSQL and into SQLite.
///
/// For each size and store, each repetition starts from an empty trips table holding only the
/// users (PostgreSQL: `TRUNCATE` and a `CHECKPOINT`, so no repetition pays for the previous one's
/// dirty pages; SQLite: a new file), then times two writes: N new trips (insert), and the same N
/// trips each changed (update).
struct FlushBenchmark {
    let sizes: [Int]
    let repetitions: Int
    let database: BenchDatabase

    func run() async throws -> [FlushResult] {
        let postgres = PostgresSnapshotStore(url: database.url)
        try await postgres.migrate()
        let sqliteRoot = FileManager.default.temporaryDirectory.appendingPathComponent("snapshot-bench-\(UUID())")
        defer { try? FileManager.default.removeItem(at: sqliteRoot) }

        var results: [FlushResult] = []
        for size in sizes {
            let inserted = Workload.requestedTrips(count: size, seed: UInt64(size))
            let updated = Workload.advanced(inserted, to: .started, at: .now())
            results += try await measure(store: "PostgreSQL", inserted: inserted, updated: updated) {
                try await database.execute("TRUNCATE trips, users")
                try? await database.execute("CHECKPOINT")
                try await postgres.write(Workload.users())
                return postgres
            }
            var repetition = 0
            results += try await measure(store: "SQLite", inserted: inserted, updated: updated) {
                repetition += 1
                let store = try SQLiteSnapshotStore(directory: sqliteRoot.appendingPathComponent("\(size)-\(repetition)").path)
                try await store.migrate()
                try await store.write(Workload.users())
                return store
            }
        }
        await postgres.close()
        return results
    }

    /// Times `repetitions` insert and update writes, each pair on a store that `fresh` prepares.
    private func measure(
        store name: String, inserted: ChangeSet, updated: ChangeSet, fresh: () async throws -> any SnapshotStore
    ) async throws -> [FlushResult] {
        var insertTimes: [Double] = []
        var updateTimes: [Double] = []
        let clock = ContinuousClock()
        for repetition in 1...repetitions {
            let store = try await fresh()
            insertTimes.append(try await clock.measure { try await store.write(inserted) }.inSeconds)
            updateTimes.append(try await clock.measure { try await store.write(updated) }.inSeconds)
            progress.log(
                "flush \(name) \(inserted.trips.count) trips, run \(repetition)/\(repetitions): "
                    + "insert \(Format.seconds(insertTimes.last!)), update \(Format.seconds(updateTimes.last!))"
            )
        }
        return [
            FlushResult(store: name, trips: inserted.trips.count, kind: .insert, seconds: insertTimes),
            FlushResult(store: name, trips: inserted.trips.count, kind: .update, seconds: updateTimes),
        ]
    }
}
