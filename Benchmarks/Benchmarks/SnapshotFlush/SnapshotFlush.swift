import Benchmark
import BenchmarkWorkloads
import Foundation
import Hub
import Persistence

/// How long one snapshot of N changed trips takes to write, `SnapshotStore.write` in one
/// transaction, into PostgreSQL and into SQLite: an end-to-end measurement with a real database,
/// not a hot-path micro-benchmark, so it has no thresholds.
///
/// Each sample starts from an empty trips table holding only the users (PostgreSQL: `TRUNCATE`
/// and a `CHECKPOINT`, so no sample pays for the previous one's dirty pages; SQLite: a new file)
/// and times one write, outside of which nothing is measured: N new trips (insert), or the same
/// N trips each changed after they were inserted (update).
///
/// The PostgreSQL benchmarks run only with `TAXI_HUB_TEST_DATABASE_URL` (any database of the
/// server: they make a database of their own there and drop it afterwards); the SQLite ones
/// always. N is 100,000, or each size in `TAXI_HUB_FLUSH_SIZES` (comma-separated).
let benchmarks: @Sendable () -> Void = {
    let environment = ProcessInfo.processInfo.environment
    let serverURL = environment["TAXI_HUB_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    let sizes = (environment["TAXI_HUB_FLUSH_SIZES"] ?? "100000").split(separator: ",").compactMap {
        Int($0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: ""))
    }
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .cpuTotal], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(600),
        maxIterations: 5, thresholds: [:]
    )
    for size in sizes {
        for kind in FlushKind.allCases {
            let postgres = PostgresFlush(size: size)
            var postgresConfiguration = configuration
            postgresConfiguration.skip = serverURL == nil
            Benchmark(
                "postgres-\(kind.rawValue)-\(size)-trips", configuration: postgresConfiguration,
                closure: { benchmark in
                    do {
                        try await postgres.sample(kind, benchmark)
                    } catch {
                        benchmark.error("PostgreSQL flush failed: \(error)")
                    }
                },
                setup: { try await postgres.start(serverURL: serverURL ?? "") },
                teardown: { try await postgres.stop() }
            )
            let sqlite = SQLiteFlush(size: size)
            Benchmark(
                "sqlite-\(kind.rawValue)-\(size)-trips", configuration: configuration,
                closure: { benchmark in
                    do {
                        try await sqlite.sample(kind, benchmark)
                    } catch {
                        benchmark.error("SQLite flush failed: \(error)")
                    }
                },
                setup: { sqlite.start() },
                teardown: { sqlite.stop() }
            )
        }
    }
}

enum FlushKind: String, CaseIterable {
    /// N trips that are not stored yet.
    case insert
    /// The same N trips, each changed.
    case update
}

/// The sets a flush benchmark writes.
struct FlushSets {
    let inserted: ChangeSet
    let updated: ChangeSet

    init(size: Int) {
        inserted = SnapshotWorkload.requestedTrips(count: size, seed: UInt64(size))
        updated = SnapshotWorkload.advanced(inserted, to: .started, at: .now())
    }

    /// Writes what comes before the measured write of `kind` into a fresh store, then times it.
    func sample(_ kind: FlushKind, into store: any SnapshotStore, _ benchmark: Benchmark) async throws {
        try await store.write(SnapshotWorkload.users())
        if kind == .update {
            try await store.write(inserted)
        }
        benchmark.startMeasurement()
        try await store.write(kind == .insert ? inserted : updated)
        benchmark.stopMeasurement()
    }
}

/// The PostgreSQL store on a database of the benchmark's own.
final class PostgresFlush {
    private let size: Int
    private var sets: FlushSets?
    private var database: BenchDatabase?
    private var store: PostgresSnapshotStore?

    init(size: Int) {
        self.size = size
    }

    func start(serverURL: String) async throws {
        let database = try await BenchDatabase.create(named: "taxihub_flush_bench", serverURL: serverURL)
        let store = PostgresSnapshotStore(url: database.url)
        try await store.migrate()
        sets = FlushSets(size: size)
        self.database = database
        self.store = store
    }

    func sample(_ kind: FlushKind, _ benchmark: Benchmark) async throws {
        guard let database, let store, let sets else { return }
        try await database.execute("TRUNCATE trips, users")
        try? await database.execute("CHECKPOINT")
        try await sets.sample(kind, into: store, benchmark)
    }

    func stop() async throws {
        await store?.close()
        try await database?.drop()
        store = nil
        database = nil
    }
}

/// A new SQLite store per sample, in a folder of the benchmark's own.
final class SQLiteFlush {
    private let size: Int
    private let root = FileManager.default.temporaryDirectory.appendingPathComponent("taxi-hub-flush-\(UUID())")
    private var sets: FlushSets?
    private var samples = 0

    init(size: Int) {
        self.size = size
    }

    func start() {
        sets = FlushSets(size: size)
    }

    func sample(_ kind: FlushKind, _ benchmark: Benchmark) async throws {
        guard let sets else { return }
        samples += 1
        let directory = root.appendingPathComponent("\(samples)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteSnapshotStore(directory: directory.path)
        try await store.migrate()
        try await sets.sample(kind, into: store, benchmark)
    }

    func stop() {
        try? FileManager.default.removeItem(at: root)
    }
}
