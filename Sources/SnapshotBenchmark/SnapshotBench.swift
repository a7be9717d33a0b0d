import ArgumentParser
import BenchSupport
import Foundation

/// snapshot-bench's progress lines.
let progress = ProgressLog("snapshot-bench")

/// `snapshot-bench`: the persistence benchmark of issue 4.
///
/// 1. Flush time: `SnapshotStore.write` of N changed trips, new rows then every row updated, into
///    PostgreSQL and into SQLite, repeated; median and minimum.
/// 2. WebSocket echo round trip of an in-process hub on PostgreSQL, with no snapshot load and while
///    an N-trip snapshot is written every interval, phases alternating in one run.
///
/// Results go to stdout as Markdown tables (and to `--json FILE`); progress goes to stderr.
@main
struct SnapshotBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot-bench",
        abstract: "Time snapshot flushes and the WebSocket round trip while snapshots run (issue 4).",
        discussion: """
            Needs a PostgreSQL server: start a throwaway one with
              eval "$(scripts/postgres start /tmp/bench-pg 55460)"
            The benchmark creates (and afterwards drops) its own database on that server.
            """
    )

    @Option(help: "PostgreSQL URL of any database on the server (default: $TAXI_HUB_TEST_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Changed trips per snapshot, comma-separated (default: 1000,10000,100000).", transform: Self.integers)
    var sizes: [Int] = [1_000, 10_000, 100_000]

    @Option(help: "Timed writes per store, size and kind (insert, update).")
    var repetitions = 5

    @Option(help: "WebSocket connections of the echo load.")
    var connections = 100

    @Option(help: "Echo messages per second, all connections together.")
    var rate = 5_000

    @Option(help: "Seconds per latency phase.")
    var phaseSeconds = 10

    @Option(help: "Rounds of the phase sequence (no snapshots, snapshots of size 1, …) in the latency run.")
    var rounds = 3

    @Option(help: "Seconds of echo load before the first measured phase (not recorded).")
    var warmupSeconds = 3

    @Option(help: "Seconds between the end of one snapshot write and the start of the next, as in the hub.")
    var snapshotInterval = 1.0

    @Flag(help: "Skip the flush-time measurements.")
    var skipFlush = false

    @Flag(help: "Skip the WebSocket latency measurements.")
    var skipLatency = false

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    func validate() throws {
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }) else { throw ValidationError("--sizes must be positive.") }
        for (name, value) in [
            ("--repetitions", repetitions), ("--connections", connections), ("--rate", rate),
            ("--phase-seconds", phaseSeconds), ("--rounds", rounds),
        ] where value < 1 {
            throw ValidationError("\(name) must be at least 1.")
        }
        guard warmupSeconds >= 0 else { throw ValidationError("--warmup-seconds must not be negative.") }
        guard snapshotInterval > 0 else { throw ValidationError("--snapshot-interval must be positive.") }
        guard resolvedURL != nil else {
            throw ValidationError("Give --database-url or set TAXI_HUB_TEST_DATABASE_URL.")
        }
    }

    func run() async throws {
        let database = try await BenchDatabase.create(serverURL: resolvedURL!)
        var report = Report(machine: try await Machine.current(postgresVersion: database.serverVersion()))
        progress.log("machine: \(report.machine.summary)")
        do {
            if !skipFlush {
                report.flush = try await FlushBenchmark(sizes: sizes, repetitions: repetitions, database: database).run()
            }
            if !skipLatency {
                let settings = LatencyBenchmark.Settings(
                    connections: connections, rate: rate, phase: .seconds(phaseSeconds), rounds: rounds,
                    warmup: .seconds(warmupSeconds), snapshotInterval: .milliseconds(Int64(snapshotInterval * 1000))
                )
                report.latency = try await LatencyBenchmark(sizes: sizes, settings: settings, database: database).run()
            }
        } catch {
            try? await database.drop()
            throw error
        }
        try await database.drop()
        print(report.markdown)
        if let json {
            try report.jsonData().write(to: URL(fileURLWithPath: json))
            progress.log("wrote \(json)")
        }
    }

    private var resolvedURL: String? {
        databaseURL ?? ProcessInfo.processInfo.environment["TAXI_HUB_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    private static func integers(_ text: String) throws -> [Int] {
        try text.split(separator: ",").map { part in
            let digits = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")
            guard let value = Int(digits) else { throw ValidationError("Not a number: \(part)") }
            return value
        }
    }
}
