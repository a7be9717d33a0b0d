import BenchSupport
import Histogram
import Web

/// The counters, the hub's CPU time and memory, and the generator's CPU time at one moment.
struct Checkpoint: Sendable {
    let time: UInt64
    let counters: [Int]
    let hub: HubEndpoint.ProcessReading
    let generatorCPU: Double

    static func take(_ measurements: Measurements, hub endpoint: HubEndpoint) async throws -> Checkpoint {
        let hub = try await endpoint.processReading()
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
    var hubResidentBytes: Int
    var generatorCPUSeconds: Double

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
        hubCPUSeconds = end.hub.cpuSeconds - start.hub.cpuSeconds
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
