import Foundation
import Synchronization

/// Runs seeded simulations, each on a thread of its own (a run blocks its thread on store I/O,
/// so it never runs on the cooperative pool), and sums them up.
public enum Simulator {
    /// Runs one seed to its end.
    public static func run(seed: UInt64, options: SimulationOptions) async -> SimulationResult {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: Simulation(seed: seed, options: options).run())
            }
            // The size of a main thread's stack: Foundation gives secondary threads less on some
            // systems (512 KiB on Darwin), and a run nests hub code, GRDB and the bridge on this one.
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// The seeds of a batch: `first`, `first + 1`, … (each seed stands alone; neighbours are
    /// as unrelated as any two).
    public static func seeds(from first: UInt64, count: Int) -> [UInt64] {
        (0..<UInt64(max(0, count))).map { first &+ $0 }
    }
}

/// The sum of many runs, for the command's summary and the suite's report.
public struct SimulationSummary: Sendable {
    public private(set) var runs = 0
    public private(set) var steps = 0
    public private(set) var jobs = 0
    public private(set) var invariantChecks = 0
    public private(set) var crashes = 0
    public private(set) var writes = 0
    public private(set) var failedWrites = 0
    public private(set) var journalWrites = 0
    public private(set) var journalFailures = 0
    public private(set) var journalReplayed = 0
    public private(set) var staleResumes = 0
    public private(set) var refusals: [String: Int] = [:]
    public private(set) var replayedEvents = 0
    public private(set) var recoveredReplays = 0
    public private(set) var unjudgedReplays = 0
    public private(set) var failures: [SimulationFailure] = []
    private var digests: [UInt64: UInt64] = [:]

    public init() {}

    public mutating func add(_ result: SimulationResult) {
        runs += 1
        steps += result.steps
        jobs += result.jobs
        invariantChecks += result.invariantChecks
        crashes += result.crashes
        writes += result.writes
        failedWrites += result.failedWrites
        journalWrites += result.journalWrites
        journalFailures += result.journalFailures
        journalReplayed += result.journalReplayed
        staleResumes += result.staleResumes
        refusals.merge(result.refusals, uniquingKeysWith: +)
        replayedEvents += result.replayedEvents
        recoveredReplays += result.recoveredReplays
        unjudgedReplays += result.unjudgedReplays
        if let failure = result.failure { failures.append(failure) }
        digests[result.seed] = result.digest
    }

    /// One digest of every run's trace, in seed order: the same seeds give the same digest, in
    /// any process and whatever order the runs finished in.
    public var digest: UInt64 {
        var digest: UInt64 = 0xCBF2_9CE4_8422_2325
        for (_, value) in digests.sorted(by: { $0.key < $1.key }) {
            digest = (digest ^ value) &* 0x0000_0100_0000_01B3
        }
        return digest
    }

    public var description: String {
        var text = "\(runs) runs, \(steps) steps, \(jobs) jobs, \(invariantChecks) invariant checks, "
        text += "\(crashes) crashes, \(writes) snapshot writes (\(failedWrites) failed), "
        text += "\(journalWrites) journal commits (\(journalFailures) failed, stopping the hub; \(journalReplayed) records replayed at restarts), "
        text += "\(replayedEvents) events replayed by resume "
        text += "(\(recoveredReplays) lost unread with their connection and made up for by a later resume, "
        text += "\(unjudgedReplays) not judged), "
        text += "\(staleResumes) client views ahead of a recovered trip's stored seq, refusals "
        text += refusals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "; "
        text += failures.isEmpty ? "no failures" : "\(failures.count) failed: seeds \(failures.map(\.seed).sorted())"
        return text + "; trace digest " + String(digest, radix: 16)
    }
}
