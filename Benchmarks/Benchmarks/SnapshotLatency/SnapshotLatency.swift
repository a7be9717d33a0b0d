import BenchSupport
import Benchmark
import BenchmarkWorkloads
import Foundation

/// The WebSocket echo round trip of a whole hub on PostgreSQL, without snapshots and while
/// snapshots of N changed trips are written (`LatencyBenchmark`): an end-to-end measurement,
/// one long sample, no thresholds. Its figures are custom metrics,
/// p50 and p99 in µs and the p99 with snapshots over the p99 without (×100), and the phase
/// tables go to stderr as it runs.
///
/// Runs only with `TAXI_HUB_TEST_DATABASE_URL` (any database of the server: it makes a database
/// of its own there and drops it afterwards). Its settings, from the environment:
/// `TAXI_HUB_LATENCY_SIZES` (trips per snapshot, default `1000,10000,100000`),
/// `TAXI_HUB_LATENCY_ROUNDS` (default 3), `TAXI_HUB_LATENCY_PHASE_SECONDS` (default 10),
/// `TAXI_HUB_LATENCY_CONNECTIONS` (default 100), `TAXI_HUB_LATENCY_RATE` (echo messages a
/// second, default 5,000).
let benchmarks: @Sendable () -> Void = {
    let environment = ProcessInfo.processInfo.environment
    let serverURL = environment["TAXI_HUB_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    func integers(_ name: String, _ fallback: [Int]) -> [Int] {
        let values = environment[name]?.split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: ""))
        }
        guard let values, !values.isEmpty, values.allSatisfy({ $0 > 0 }) else { return fallback }
        return values
    }
    let sizes = integers("TAXI_HUB_LATENCY_SIZES", [1_000, 10_000, 100_000])
    let settings = LatencyBenchmark.Settings(
        connections: integers("TAXI_HUB_LATENCY_CONNECTIONS", [100])[0], rate: integers("TAXI_HUB_LATENCY_RATE", [5_000])[0],
        phase: .seconds(integers("TAXI_HUB_LATENCY_PHASE_SECONDS", [10])[0]),
        rounds: integers("TAXI_HUB_LATENCY_ROUNDS", [3])[0], warmup: .seconds(3), snapshotInterval: .seconds(1)
    )
    let metrics = LatencyMetrics(sizes: sizes)
    Benchmark(
        "echo-while-snapshots-run",
        configuration: Benchmark.Configuration(
            metrics: metrics.all, warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(3_600),
            maxIterations: 1, skip: serverURL == nil, thresholds: [:]
        ),
        closure: { benchmark in
            do {
                let database = try await BenchDatabase.create(named: "taxihub_latency_bench", serverURL: serverURL ?? "")
                progress.log("PostgreSQL \(try await database.serverVersion())")
                let results: LatencyResults
                do {
                    results = try await LatencyBenchmark(sizes: sizes, settings: settings, database: database).run()
                } catch {
                    try? await database.drop()
                    throw error
                }
                try await database.drop()
                benchmark.stopMeasurement()
                metrics.report(results, to: benchmark)
                progress.log("\n" + results.markdown.joined(separator: "\n"))
            } catch {
                benchmark.error("The latency run failed: \(error)")
            }
        }
    )
}

/// The run's figures as package-benchmark custom metrics (whole numbers).
struct LatencyMetrics {
    let sizes: [Int]

    private static let without = "no snapshots"
    private static func with(_ trips: Int) -> String { "\(trips)-trip snapshots" }

    private static func p50(_ load: String) -> BenchmarkMetric { .custom("echo p50 µs, \(load)", useScalingFactor: false) }
    private static func p99(_ load: String) -> BenchmarkMetric { .custom("echo p99 µs, \(load)", useScalingFactor: false) }
    private static func ratio(_ trips: Int) -> BenchmarkMetric {
        .custom("p99 ÷ p99 without ×100, \(with(trips))", useScalingFactor: false)
    }
    private static func lost(_ load: String) -> BenchmarkMetric { .custom("lost replies, \(load)", useScalingFactor: false) }

    var all: [BenchmarkMetric] {
        [Self.p50(Self.without), Self.p99(Self.without), Self.lost(Self.without)]
            + sizes.flatMap { [Self.p50(Self.with($0)), Self.p99(Self.with($0)), Self.ratio($0), Self.lost(Self.with($0))] }
    }

    func report(_ results: LatencyResults, to benchmark: Benchmark) {
        for row in results.rows {
            let load = row.snapshotTrips.map(Self.with) ?? Self.without
            benchmark.measurement(Self.p50(load), Int((row.latency.p50 * 1_000).rounded()))
            benchmark.measurement(Self.p99(load), Int((row.latency.p99 * 1_000).rounded()))
            benchmark.measurement(Self.lost(load), row.lost)
            if let trips = row.snapshotTrips {
                benchmark.measurement(Self.ratio(trips), Int((row.p99Ratio * 100).rounded()))
            }
        }
    }
}

/// Progress lines, on stderr.
let progress = ProgressLog("SnapshotLatency")

extension Format {
    /// `no snapshots` or `100,000-trip snapshots`.
    static func snapshotLabel(_ trips: Int?) -> String {
        trips.map { "\(count($0))-trip snapshots" } ?? "no snapshots"
    }
}
