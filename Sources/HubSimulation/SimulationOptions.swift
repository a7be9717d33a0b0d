@_spi(Simulation) import Hub

/// The kinds of faults a run may inject (`taxi-hub simulate --faults`).
public enum SimulationFault: String, Sendable, CaseIterable {
    /// Snapshot writes fail (before or after committing) or stall, on the seed's schedule; so do
    /// the journal's writes (a failed one stops the process, which then recovers).
    case store
    /// The hub is thrown away at a random step and rebuilt from the store.
    case crash
    /// Clients stop reading for a while; their queued locations coalesce.
    case slow
}

/// What one simulated run does. Everything else comes from the seed.
public struct SimulationOptions: Sendable {
    /// Steps of the workload phase (each runs one job or starts one client operation); the run
    /// then drains what is in flight and checks the end state.
    public var steps = 1_000
    public var faults: Set<SimulationFault> = Set(SimulationFault.allCases)
    /// Print every trace line to standard error as the run goes (to study one seed).
    public var printTrace = false
    /// A bug planted in the hub, to prove the simulator finds it (planted-bug test only).
    @_spi(Simulation) public var plantedBug: PlantedBug?
    /// A bug planted in the simulated commit log (planted-bug test only).
    @_spi(Simulation) public var plantedCommitBug: PlantedCommitBug?
    /// Check, the moment a client is handed a trip state or an answer, that it was durable then
    /// (on by default). The planted-bug test turns it off to prove that the crash check alone
    /// (no acknowledged change lost) finds a hub that acknowledges early, too.
    @_spi(Simulation) public var checksDurabilityOnDelivery = true
    /// Planted client bug: simulated clients ignore the end-of-replay mark (`resumeEnded`,
    /// `resume.done`) and resume each trip from the highest `seq` they saw, as clients did before
    /// protocol §3.5 had the mark (and the reference's still do). A replay cut off by a dropped
    /// connection is then lost for good, which the invariant must catch.
    @_spi(Simulation) public var clientsIgnoreResumeEnd = false
    /// Per workload operation, the chance that a client stops (or goes on) reading, with the
    /// `slow` fault, and that an idle connected client disconnects. Raised only to make a rare
    /// schedule likelier (the planted client bug's test); each draw is made whatever its value,
    /// so other values leave the rest of the seed's schedule as it was.
    @_spi(Simulation) public var slowChance = 0.03
    @_spi(Simulation) public var disconnectChance = 0.04
    /// With the `slow` fault, the chance that a client whose connection is still resuming stops
    /// reading right after it read a live event of a trip it is about to resume: the window in
    /// which a replay queues behind live events with a higher `seq`. 0 (the default) draws
    /// nothing, so default runs are unchanged.
    @_spi(Simulation) public var slowsMidResume = 0.0
    /// Where the runs keep their SQLite files (one folder per run, removed after it).
    public var directory: String
    /// A PostgreSQL database (a URL `PostgresConnection` takes): when set, each run works in a
    /// schema of its own there, through the real `PostgresSnapshotStore`, instead of SQLite.
    public var databaseURL: String?

    public init(directory: String) {
        self.directory = directory
    }
}

/// A broken invariant: where and what, with the last events of the trip involved.
public struct SimulationFailure: Error, Sendable, CustomStringConvertible {
    public let seed: UInt64
    public let step: Int
    public let message: String
    /// The last events of the trip involved (or of the run), oldest first.
    public let trace: [String]

    public var description: String {
        var text = "seed \(seed) failed at step \(step): \(message)\n"
        text += "  replay: taxi-hub simulate --runs 1 --seed \(seed) --trace  |  TAXI_HUB_SIM_SEED=\(seed) swift test --filter SimulationTests\n"
        text += "  last events:\n"
        for line in trace { text += "    \(line)\n" }
        return text
    }
}

/// What one run did.
public struct SimulationResult: Sendable {
    public let seed: UInt64
    /// Steps taken (workload and drain).
    public let steps: Int
    /// Jobs the scheduler ran.
    public let jobs: Int
    /// Invariant evaluations (one per invariant per trip, driver or connection checked).
    public let invariantChecks: Int
    /// Crash-and-recover cycles.
    public let crashes: Int
    /// Snapshot writes that reached the store, and those that failed.
    public let writes: Int
    public let failedWrites: Int
    /// Journal (commit log) writes that became durable, and failed ones that stopped the process.
    public let journalWrites: Int
    public let journalFailures: Int
    /// Journal records replayed into the store at recoveries.
    public let journalReplayed: Int
    /// Clients that, at a recovery, had seen a `seq` of a trip beyond the stored one (locations
    /// after the last snapshot, lost in the crash as the rules allow: state changes are journaled). The recovered trip numbers its events from the
    /// clock (`Hub.restore`), above what they saw, so their `resume` gets the current state and
    /// no `seq` is used twice (checked for every delivered event).
    public let staleResumes: Int
    /// Requests the hub refused, by error code (`trip_taken`: accept races lost).
    public let refusals: [String: Int]
    /// Events `resume` replayed to reconnected clients.
    public let replayedEvents: Int
    /// Replayed events a client never read because its connection dropped while they were queued
    /// behind live events with a higher `seq`, that a later resume of the same client then
    /// delivered (or stood for with the trip's current state), as protocol §3.5's `resume.done`
    /// promises (see `Simulation.settleOwed`).
    public let recoveredReplays: Int
    /// Such lost replays the run could not judge: the client's next resume of the trip was
    /// refused, or a crash kept its reply from the harness after its end mark was read.
    public let unjudgedReplays: Int
    /// A digest of the run's whole trace: the same seed gives the same digest.
    public let digest: UInt64
    public let failure: SimulationFailure?
}
