import BenchSupport
import NIOPosix

/// The load generator, as a library: `taxi-hub loadtest` and the smoke test both run it.
///
/// In one run, in this order: the hub load (simulated drivers and riders) when there are
/// drivers; the same frames at the same rate through the bare echo route with `baseline` (the
/// two alternating `rounds` times); and `idle` idle connections. Each phase closes its
/// connections before the next starts.
public enum LoadTest {
    /// Runs `settings` against the hubs at `settings.urls`; progress lines go to `log`.
    public static func run(_ settings: LoadTestSettings, log: @escaping @Sendable (String) -> Void) async throws -> LoadTestReport {
        if let problem = settings.problems.first { throw InvalidSettings(description: problem) }
        let limits = FileLimits.raiseToHardLimit()
        if max(settings.drivers + settings.riders, settings.idle + 1) + 64 > limits.soft {
            log("WARNING: \(limits.soft) open files allowed; the connections asked for may not all fit")
        }
        let hubs = try HubNodes(urls: settings.urls)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: settings.threads)
        let connector = Connector(
            hubs: hubs, sources: try SourceAddresses(settings.sourceAddresses), group: group, concurrency: settings.openConcurrency
        )
        var report = LoadTestReport(settings: settings)
        let recorder = try settings.recordPath.map { try Recorder(path: $0) }
        recorder?.start(settings)
        do {
            var loads: [PhaseResults] = []
            var baselines: [PhaseResults] = []
            if settings.drivers > 0 {
                for round in 1...settings.rounds {
                    if settings.rounds > 1 { log("round \(round) of \(settings.rounds)") }
                    loads.append(try await LoadPhase(settings: settings, connector: connector, recorder: recorder, log: log).run())
                    if settings.baseline {
                        baselines.append(try await BaselinePhase(settings: settings, connector: connector, log: log).run())
                    }
                }
            }
            report.record(loads: loads, baselines: baselines)
            report.acknowledged = recorder?.acknowledged
            if settings.idle > 0 {
                report.idle = try await IdlePhase(settings: settings, connector: connector, log: log).run()
            }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
        recorder?.end(
            Recorder.Summary(
                acknowledged: report.acknowledged ?? .init(), reconnects: report.reconnects, drops: report.drops, errors: report.errors,
                connectionFailures: report.connectionFailureReasons, tripsCompleted: report.tripsCompleted,
                locationLatencyMs: report.locationLatencyMs
            )
        )
        return report
    }

    /// Settings that cannot run; the message names the flag.
    public struct InvalidSettings: Error, CustomStringConvertible {
        public let description: String
    }
}
