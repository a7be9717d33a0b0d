import ArgumentParser
import Foundation
import HubSimulation

/// `taxi-hub simulate`: runs the real hub under the deterministic simulator (docs/simulation.md), seed after
/// seed, and reports every broken invariant with the seed that replays it.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the hub under seeded, deterministic schedules with faults; report broken invariants and their seeds.",
        discussion: """
            Each run builds a hub with a real SQLite store in a temporary folder (or, with --database-url or \
            TAXI_HUB_SIM_DATABASE_URL, the real PostgreSQL store in a schema of its own on that server, dropped after \
            the run), drives simulated riders and drivers \
            from its seed, injects the chosen faults, and checks the invariants after every step. A failure prints \
            its seed; --seed S replays it exactly. Progress goes to stderr, the summary to stdout; the exit status is \
            1 when any run failed.
            Example: taxi-hub simulate --runs 10000 --faults store,crash,slow
            """
    )

    @Option(help: "Runs (seeds) to simulate.") var runs = 100
    @Option(help: "The first seed (later runs take the next ones); a random one when absent.") var seed: UInt64?
    @Option(help: "Faults to inject, comma-separated: store, crash, slow; 'none' for none.")
    var faults = "store,crash,slow"
    @Option(help: "Workload steps per run.") var steps = 1_000
    @Option(help: "Runs at once (each on a thread of its own).") var parallel = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Print every run's trace to stderr as it goes (use with one --seed and --runs 1).") var trace = false
    @Option(help: "Folder for the runs' SQLite files (removed after each run).")
    var directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-sim").path
    @Option(
        help: "Run against PostgreSQL instead of SQLite: a database URL (each run makes and drops a schema of its own there). Default: $TAXI_HUB_SIM_DATABASE_URL."
    )
    var databaseURL: String?

    func validate() throws {
        guard runs > 0, steps > 0, parallel > 0 else { throw ValidationError("--runs, --steps and --parallel must be positive.") }
        _ = try parsedFaults()
    }

    func run() async throws {
        var settings = SimulationOptions(directory: directory)
        settings.steps = steps
        settings.faults = try parsedFaults()
        settings.printTrace = trace
        settings.databaseURL = (databaseURL ?? ProcessInfo.processInfo.environment["TAXI_HUB_SIM_DATABASE_URL"]).flatMap { $0.isEmpty ? nil : $0 }
        let options = settings
        let first = seed ?? UInt64.random(in: 1...(1 << 40))
        let seeds = Simulator.seeds(from: first, count: runs)
        let started = ContinuousClock.now
        var summary = SimulationSummary()
        var lastProgress = started
        await withTaskGroup(of: SimulationResult.self) { group in
            var next = seeds.makeIterator()
            for _ in 0..<parallel {
                if let seed = next.next() { group.addTask { await Simulator.run(seed: seed, options: options) } }
            }
            for await result in group {
                summary.add(result)
                if let failure = result.failure { FileHandle.standardError.write(Data("\n\(failure)".utf8)) }
                let now = ContinuousClock.now
                if now - lastProgress >= .seconds(1) || summary.runs == seeds.count {
                    lastProgress = now
                    let seconds = Self.seconds(now - started)
                    let line = "\r\(summary.runs)/\(seeds.count) runs, \(summary.steps) steps (\(Int(Double(summary.steps) / max(seconds, 0.001))) steps/s), \(summary.failures.count) failed"
                    FileHandle.standardError.write(Data(line.utf8))
                }
                if let seed = next.next() { group.addTask { await Simulator.run(seed: seed, options: options) } }
            }
        }
        FileHandle.standardError.write(Data("\n".utf8))
        let seconds = Self.seconds(ContinuousClock.now - started)
        print(
            "seeds \(first)…\(seeds.last!), faults: \(options.faults.map(\.rawValue).sorted().joined(separator: ",").ifEmpty("none")), store: \(options.databaseURL == nil ? "SQLite" : "PostgreSQL")"
        )
        print(summary.description)
        print(String(format: "%.1f s, %.0f steps/s, %.1f runs/s", seconds, Double(summary.steps) / seconds, Double(summary.runs) / seconds))
        for failure in summary.failures { print("FAILED seed \(failure.seed) at step \(failure.step): \(failure.message)") }
        if !summary.failures.isEmpty { throw ExitCode(1) }
    }

    private func parsedFaults() throws -> Set<SimulationFault> {
        let names = faults.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if names == ["none"] { return [] }
        return Set(
            try names.map { name in
                guard let fault = SimulationFault(rawValue: name) else {
                    throw ValidationError("Unknown fault '\(name)'; use store, crash, slow or none.")
                }
                return fault
            }
        )
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

extension String {
    fileprivate func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
