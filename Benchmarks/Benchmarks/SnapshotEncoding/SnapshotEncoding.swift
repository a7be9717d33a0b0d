import Benchmark
import BenchmarkWorkloads
import Hub
@_spi(Benchmarks) import Persistence

/// The CPU a snapshot write spends before the database sees it, for both stores, without a
/// database: the PostgreSQL store's binary COPY rows (`PostgresSnapshotStore.write` from 1,000
/// rows of a table on, which every large snapshot takes) and the SQLite store's column values
/// and batched statement text (`SQLiteSnapshotStore.write`). The sets: 10,000 changed trips
/// (drivers assigned, as accepts and starts change them), and 20,000 new track points (5 fixes
/// each of 4,000 driven trips, a second of the standard load's fixes). One sample is one set.
let benchmarks: @Sendable () -> Void = {
    let sets: [(name: String, make: @Sendable () -> ChangeSet)] = [
        (
            "10000-trips",
            {
                SnapshotWorkload.advanced(
                    SnapshotWorkload.requestedTrips(count: 10_000, seed: 10_000), to: .started,
                    at: Timestamp(microseconds: 1_764_590_400_000_000)
                )
            }
        ),
        ("20000-track-points", { SnapshotWorkload.trackPoints(trips: 4_000, pointsPerTrip: 5, seed: 20_000) }),
    ]
    for (name, make) in sets {
        let postgres = EncodingState()
        Benchmark(
            "postgres-copy-\(name)", configuration: HotPath.configuration(scalingFactor: .one),
            closure: { benchmark in
                do {
                    blackHole(try PostgresSnapshotStore.encodeCopyRows(of: postgres.changes))
                } catch {
                    benchmark.error("encoding failed: \(error)")
                }
            },
            setup: { postgres.changes = make() }
        )
        let sqlite = EncodingState()
        Benchmark(
            "sqlite-rows-\(name)", configuration: HotPath.configuration(scalingFactor: .one),
            closure: { _ in blackHole(SQLiteSnapshotStore.encodeRows(of: sqlite.changes)) },
            setup: { sqlite.changes = make() }
        )
    }
}

/// The set a benchmark encodes, made in its setup.
final class EncodingState {
    var changes = ChangeSet()
}
