import BenchSupport
import Histogram

/// The counters, each hub node's CPU time and memory, and the generator's CPU time at one moment.
struct Checkpoint: Sendable {
    let time: UInt64
    let counters: [Int]
    /// By node; nil: the node did not answer `/metrics`.
    let hubs: [HubEndpoint.ProcessReading?]
    let generatorCPU: Double

    /// Reads every node's `/metrics`, trying for up to `patience` while no node answers (a hub
    /// restarting; `HubNodes.processReadings`).
    static func take(_ measurements: Measurements, hubs: HubNodes, patience: Duration = .seconds(60)) async throws -> Checkpoint {
        let readings = try await hubs.processReadings(patience: patience)
        return Checkpoint(
            time: MonotonicClock.nanoseconds(), counters: measurements.counterValues, hubs: readings, generatorCPU: ProcessStats.cpuSeconds()
        )
    }
}

/// What one measured window (a load or a baseline phase) gave, or several such windows summed
/// (`adding`: one per round).
struct PhaseResults: Sendable {
    var seconds: Double
    var location: Histogram<UInt64>
    var alert: Histogram<UInt64>
    var accept: Histogram<UInt64>
    var progress: Histogram<UInt64>
    var complete: Histogram<UInt64>
    var cancel: Histogram<UInt64>
    var noDriver: Histogram<UInt64>
    /// Requests still waiting for a driver when the phase ended (a second after the load
    /// stopped), and how long the oldest of them had waited, in seconds.
    var waitingAtEnd = 0
    var oldestWaitingSeconds = 0.0
    /// Counter increases over the window.
    var window: [Int]
    /// Counter values at the end of the phase.
    var total: [Int]
    var errors: [String: Int]
    var connectionFailureReasons: [String: Int]
    var races: (trips: Int, winners: Int, severalWinners: Int, noWinner: Int)
    /// Summed over the nodes that answered `/metrics` at both ends of the window.
    var hubCPUSeconds: Double
    /// A hub's CPU time went down across the window: it restarted, and `hubCPUSeconds` holds
    /// only the new process's time.
    var hubRestarted: Bool
    /// Summed over the nodes that answered at the end.
    var hubResidentBytes: Int
    /// The hubs' commits over the window, summed over the nodes that reported commit counters at
    /// both ends (nil: none did, e.g. a hub from before durable acknowledgements).
    var hubCommits: HubEndpoint.CommitCounters?
    /// By node: CPU seconds in the window and memory at its end (nil: no answer), and what
    /// its clients did (whole phase).
    var nodeCPUSeconds: [Double?]
    var nodeResidentBytes: [Int?]
    var nodeTallies: [Measurements.NodeTally]
    /// Nodes that did not answer `/metrics` at the start or the end of the window.
    var nodesWithoutReading: Set<Int>
    var generatorCPUSeconds: Double
    /// The log-in flood's results, in a run with `--login-rate`.
    var logins: LoginFloodResults?
    /// What the phase noticed about the hubs (a node that did not answer at the start).
    var warnings: [String] = []

    init(from start: Checkpoint, to end: Checkpoint, measurements: Measurements) {
        seconds = Double(end.time - start.time) / 1e9
        location = measurements.histogram(.location)
        alert = measurements.histogram(.alert)
        accept = measurements.histogram(.accept)
        progress = measurements.histogram(.progress)
        complete = measurements.histogram(.complete)
        cancel = measurements.histogram(.cancel)
        noDriver = measurements.histogram(.noDriver)
        window = zip(end.counters, start.counters).map { $0 - $1 }
        total = measurements.counterValues
        errors = measurements.errorCounts
        connectionFailureReasons = measurements.connectionFailureReasons
        races = measurements.raceResults
        var restarted = false
        let cpu = zip(start.hubs, end.hubs).map { first, last -> Double? in
            guard let first, let last else { return nil }
            if last.cpuSeconds < first.cpuSeconds {
                restarted = true
                return last.cpuSeconds
            }
            return last.cpuSeconds - first.cpuSeconds
        }
        let commits = zip(start.hubs, end.hubs).compactMap { first, last -> HubEndpoint.CommitCounters? in
            guard let before = first?.commits, let after = last?.commits, let first, let last, last.cpuSeconds >= first.cpuSeconds else {
                return nil
            }
            return after - before
        }
        hubCommits = commits.isEmpty ? nil : commits.dropFirst().reduce(commits[0], +)
        let resident = end.hubs.map { $0?.residentBytes }
        nodeCPUSeconds = cpu
        hubRestarted = restarted
        hubCPUSeconds = cpu.compactMap { $0 }.reduce(0, +)
        nodeResidentBytes = resident
        hubResidentBytes = resident.compactMap { $0 }.reduce(0, +)
        nodeTallies = measurements.nodeTallies
        nodesWithoutReading = Set(cpu.indices.filter { cpu[$0] == nil })
        generatorCPUSeconds = end.generatorCPU - start.generatorCPU
    }

    /// These results and a later phase's as one: times, counts and latencies summed; the hub's
    /// memory as the later phase left it.
    func adding(_ later: PhaseResults) -> PhaseResults {
        var sum = self
        sum.seconds += later.seconds
        sum.location.add(later.location)
        sum.alert.add(later.alert)
        sum.accept.add(later.accept)
        sum.progress.add(later.progress)
        sum.complete.add(later.complete)
        sum.cancel.add(later.cancel)
        sum.noDriver.add(later.noDriver)
        sum.waitingAtEnd += later.waitingAtEnd
        sum.oldestWaitingSeconds = max(oldestWaitingSeconds, later.oldestWaitingSeconds)
        sum.hubCommits = hubCommits.flatMap { mine in later.hubCommits.map { mine + $0 } } ?? hubCommits ?? later.hubCommits
        sum.window = zip(window, later.window).map(+)
        sum.total = zip(total, later.total).map(+)
        sum.errors.merge(later.errors, uniquingKeysWith: +)
        sum.connectionFailureReasons.merge(later.connectionFailureReasons, uniquingKeysWith: +)
        sum.races = (
            races.trips + later.races.trips, races.winners + later.races.winners,
            races.severalWinners + later.races.severalWinners, races.noWinner + later.races.noWinner
        )
        sum.hubCPUSeconds += later.hubCPUSeconds
        sum.hubRestarted = hubRestarted || later.hubRestarted
        sum.hubResidentBytes = later.hubResidentBytes
        sum.nodeCPUSeconds = zip(nodeCPUSeconds, later.nodeCPUSeconds).map { a, b in
            a == nil && b == nil ? nil : (a ?? 0) + (b ?? 0)
        }
        sum.nodeResidentBytes = later.nodeResidentBytes
        sum.nodeTallies = zip(nodeTallies, later.nodeTallies).map { a, b in
            Measurements.NodeTally(
                clientsStarted: a.clientsStarted + b.clientsStarted, movedAway: a.movedAway + b.movedAway, movedIn: a.movedIn + b.movedIn
            )
        }
        sum.nodesWithoutReading.formUnion(later.nodesWithoutReading)
        sum.warnings += later.warnings.filter { !warnings.contains($0) }
        sum.generatorCPUSeconds += later.generatorCPUSeconds
        return sum
    }

    func perSecond(_ counter: Measurements.Counter) -> Double {
        Double(window[counter.rawValue]) / seconds
    }

    /// Location updates the hub took (sent minus those answered with an error), per second.
    var locationUpdatesPerSecond: Double {
        Double(window[Measurements.Counter.locationsSent.rawValue] - window[Measurements.Counter.locationErrors.rawValue]) / seconds
    }

    /// Trip changes its riders saw acknowledged in the window: creates, accepts, IN_PROGRESS,
    /// COMPLETED and CANCELED states of their own trips.
    var tripChanges: Int {
        [.tripCreates, .tripAccepts, .tripProgress, .tripsCompleted, .tripCancels].reduce(0) { $0 + window[($1 as Measurements.Counter).rawValue] }
    }

    /// Hub CPU microseconds per client message (a frame the generator sent).
    var hubMicrosecondsPerMessage: Double {
        hubCPUSeconds * 1e6 / Double(max(1, window[Measurements.Counter.framesOut.rawValue]))
    }

    /// Hub CPU microseconds per frame either way.
    var hubMicrosecondsPerFrame: Double {
        hubCPUSeconds * 1e6 / Double(max(1, window[Measurements.Counter.framesOut.rawValue] + window[Measurements.Counter.framesIn.rawValue]))
    }
}
