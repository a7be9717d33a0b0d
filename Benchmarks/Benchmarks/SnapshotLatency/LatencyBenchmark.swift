import BenchSupport
import BenchmarkWorkloads
import Histogram
import Hub
import HubLauncher
import Persistence

/// The WebSocket echo round trip of a hub on PostgreSQL, without snapshot load and while
/// N-trip snapshots are written, measured in one run.
///
/// One hub runs in this process; `connections` clients send `echo.message` frames to it at `rate`
/// per second in all. After a warm-up, each round runs, per size N, a phase without snapshots then
/// a phase during which a `SnapshotLoad` writes N changed trips per snapshot into the same
/// database from this process (A, B(N₁), A, B(N₂), …), so slow drift affects both kinds alike.
/// The rows of each snapshot size are stored before the phases start, so every snapshot write
/// updates N existing rows.
struct LatencyBenchmark {
    struct Settings {
        let connections: Int
        let rate: Int
        let phase: Duration
        let rounds: Int
        let warmup: Duration
        let snapshotInterval: Duration
    }

    let sizes: [Int]
    let settings: Settings
    let database: BenchDatabase

    func run() async throws -> LatencyResults {
        let store = PostgresSnapshotStore(url: database.url)
        try await store.migrate()
        try await database.execute("TRUNCATE trips, users")
        try await store.write(SnapshotWorkload.users())
        var snapshots: [Int: [ChangeSet]] = [:]
        for size in sizes {
            let stored = SnapshotWorkload.requestedTrips(count: size, seed: 1_000_000 + UInt64(size))
            try await store.write(stored)
            let now = Timestamp.now()
            snapshots[size] = [
                SnapshotWorkload.advanced(stored, to: .started, at: now),
                SnapshotWorkload.advanced(stored, to: .inProgress, at: Timestamp(microseconds: now.microseconds + 1)),
            ]
        }

        progress.log("starting a hub on PostgreSQL")
        let hub = try await TestHub.bench(databaseURL: database.url)
        let recorder = LatencyRecorder()
        let phases: [PhaseResult]
        do {
            let token = try await hub.signUpAndLogIn(username: "bench-echo-rider")
            let load = try await EchoLoad.open(
                count: settings.connections, rate: settings.rate, port: hub.port, path: "/taxi/?token=\(token)", recorder: recorder
            )
            progress.log("\(settings.connections) WebSockets open; warming up for \(settings.warmup)")
            phases = try await runPhases(load: load, recorder: recorder, store: store, snapshots: snapshots)
            await load.close()
        } catch {
            await hub.stopAndRemove()
            await store.close()
            throw error
        }
        await hub.stopAndRemove()
        await store.close()
        return results(phases: phases, recorder: recorder)
    }

    /// The warm-up (phase 0, not reported), then the rounds of alternating phases.
    private func runPhases(
        load: EchoLoad, recorder: LatencyRecorder, store: PostgresSnapshotStore, snapshots: [Int: [ChangeSet]]
    ) async throws -> [PhaseResult] {
        let warmupSent = try await load.drive(phase: 0, for: settings.warmup)
        _ = await recorder.waitForReplies(phase: 0, expected: warmupSent, timeout: .seconds(10))
        var phases: [PhaseResult] = []
        var nextSet: [Int: Int] = [:]
        for round in 1...settings.rounds {
            for size in sizes {
                for snapshotTrips in [nil, size] {
                    let index = phases.count + 1
                    let deadline = ContinuousClock.now + settings.phase
                    var writes: [Double] = []
                    let sent: Int
                    if let snapshotTrips {
                        let snapshotLoad = SnapshotLoad(
                            store: store, sets: snapshots[snapshotTrips]!, interval: settings.snapshotInterval
                        )
                        let first = nextSet[snapshotTrips, default: 0]
                        async let written = snapshotLoad.run(until: deadline, first: first)
                        sent = try await load.drive(phase: index, for: settings.phase)
                        writes = try await written
                        nextSet[snapshotTrips, default: 0] += writes.count
                    } else {
                        sent = try await load.drive(phase: index, for: settings.phase)
                    }
                    _ = await recorder.waitForReplies(phase: index, expected: sent, timeout: .seconds(10))
                    let phase = PhaseResult(
                        index: index, round: round, snapshotTrips: snapshotTrips, sent: sent,
                        latency: LatencySummary(recorder.histogram(phase: index)), snapshotWrites: writes
                    )
                    phases.append(phase)
                    progress.log(
                        "phase \(index) (round \(round), \(Format.snapshotLabel(snapshotTrips))): "
                            + "p50 \(Format.milliseconds(phase.latency.p50)) ms, p99 \(Format.milliseconds(phase.latency.p99)) ms, "
                            + "\(phase.latency.count)/\(sent) replies"
                            + (writes.isEmpty ? "" : ", \(writes.count) writes, median \(Format.seconds(writes.median!))")
                    )
                }
            }
        }
        return phases
    }

    /// Phases merged per kind: first the row without snapshots, then one per size.
    private func results(phases: [PhaseResult], recorder: LatencyRecorder) -> LatencyResults {
        func row(_ snapshotTrips: Int?, baselineP99: Double?) -> LatencyRow {
            let matching = phases.filter { $0.snapshotTrips == snapshotTrips }
            var merged = Latency.emptyHistogram()
            for phase in matching {
                merged.add(recorder.histogram(phase: phase.index))
            }
            let latency = LatencySummary(merged)
            let writes = matching.flatMap(\.snapshotWrites)
            let sent = matching.map(\.sent).reduce(0, +)
            return LatencyRow(
                snapshotTrips: snapshotTrips, latency: latency,
                p99Ratio: baselineP99.map { $0 > 0 ? latency.p99 / $0 : 0 } ?? 1, sent: sent,
                lost: sent - latency.count, snapshotWrites: writes.count, snapshotWriteMedianSeconds: writes.median,
                snapshotWriteMaxSeconds: writes.max()
            )
        }
        let baseline = row(nil, baselineP99: nil)
        return LatencyResults(
            connections: settings.connections, messagesPerSecond: settings.rate,
            messageBytes: EchoMessage.text(phase: 1, scheduledAt: MonotonicClock.nanoseconds()).utf8.count,
            phaseSeconds: settings.phase.inSeconds, rounds: settings.rounds,
            snapshotIntervalSeconds: settings.snapshotInterval.inSeconds,
            rows: [baseline] + sizes.map { row($0, baselineP99: baseline.latency.p99) }, phases: phases,
            unrecognizedReplies: recorder.unrecognizedCount
        )
    }
}
