import BenchSupport
import Histogram
import Web

/// The counters, the hub's CPU time and memory, and the generator's CPU time at one moment.
struct Checkpoint: Sendable {
    let time: UInt64
    let counters: [Int]
    let hub: HubEndpoint.ProcessReading
    let generatorCPU: Double

    /// Reads the hub's `/metrics`, trying for up to `patience` while the hub is away (restarting).
    static func take(_ measurements: Measurements, hub endpoint: HubEndpoint, patience: Duration = .seconds(60)) async throws -> Checkpoint {
        let deadline = ContinuousClock.now + patience
        var reading: HubEndpoint.ProcessReading?
        while reading == nil {
            do {
                reading = try await endpoint.processReading()
            } catch {
                guard ContinuousClock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        guard let hub = reading else { throw HubEndpoint.Unusable(description: "/metrics gave no reading") }
        return Checkpoint(
            time: MonotonicClock.nanoseconds(), counters: measurements.counterValues, hub: hub, generatorCPU: ProcessStats.cpuSeconds()
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
    /// Counter increases over the window.
    var window: [Int]
    /// Counter values at the end of the phase.
    var total: [Int]
    var errors: [String: Int]
    var connectionFailureReasons: [String: Int]
    var races: (trips: Int, winners: Int, severalWinners: Int, noWinner: Int)
    var hubCPUSeconds: Double
    /// The hub's CPU time went down across the window: it restarted, and `hubCPUSeconds` holds
    /// only the new process's time.
    var hubRestarted: Bool
    var hubResidentBytes: Int
    var generatorCPUSeconds: Double
    /// The log-in flood's results, in a run with `--login-rate`.
    var logins: LoginFloodResults?

    init(from start: Checkpoint, to end: Checkpoint, measurements: Measurements) {
        seconds = Double(end.time - start.time) / 1e9
        location = measurements.histogram(.location)
        alert = measurements.histogram(.alert)
        accept = measurements.histogram(.accept)
        window = zip(end.counters, start.counters).map { $0 - $1 }
        total = measurements.counterValues
        errors = measurements.errorCounts
        connectionFailureReasons = measurements.connectionFailureReasons
        races = measurements.raceResults
        hubRestarted = end.hub.cpuSeconds < start.hub.cpuSeconds
        hubCPUSeconds = hubRestarted ? end.hub.cpuSeconds : end.hub.cpuSeconds - start.hub.cpuSeconds
        hubResidentBytes = end.hub.residentBytes
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

    /// Hub CPU microseconds per client message (a frame the generator sent).
    var hubMicrosecondsPerMessage: Double {
        hubCPUSeconds * 1e6 / Double(max(1, window[Measurements.Counter.framesOut.rawValue]))
    }

    /// Hub CPU microseconds per frame either way.
    var hubMicrosecondsPerFrame: Double {
        hubCPUSeconds * 1e6 / Double(max(1, window[Measurements.Counter.framesOut.rawValue] + window[Measurements.Counter.framesIn.rawValue]))
    }
}
