import BenchSupport
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

/// What one measured window (a load or a baseline phase) gave.
struct PhaseResults: Sendable {
    let seconds: Double
    let location: LatencySummary
    let alert: LatencySummary
    let accept: LatencySummary
    /// Counter increases over the window.
    let window: [Int]
    /// Counter values at the end of the run.
    let total: [Int]
    let errors: [String: Int]
    let connectionFailureReasons: [String: Int]
    let races: (trips: Int, winners: Int, severalWinners: Int, noWinner: Int)
    let hubCPUSeconds: Double
    let hubResidentBytes: Int
    let generatorCPUSeconds: Double

    init(from start: Checkpoint, to end: Checkpoint, measurements: Measurements) {
        seconds = Double(end.time - start.time) / 1e9
        location = measurements.summary(.location)
        alert = measurements.summary(.alert)
        accept = measurements.summary(.accept)
        window = zip(end.counters, start.counters).map { $0 - $1 }
        total = measurements.counterValues
        errors = measurements.errorCounts
        connectionFailureReasons = measurements.connectionFailureReasons
        races = measurements.raceResults
        hubCPUSeconds = end.hub.cpuSeconds - start.hub.cpuSeconds
        hubResidentBytes = end.hub.residentBytes
        generatorCPUSeconds = end.generatorCPU - start.generatorCPU
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
