import BenchSupport
import Foundation

/// A load phase's live line, once a second, handed to `log` (the command's `ProgressLog`, on
/// stderr): elapsed time, open connections, frames per second
/// out and in, location updates per second, the p99 location latency of that second, and
/// reconnections, drops and errors when there were any. With a recorder, the same second also
/// goes to the record as a `window` line.
struct PhaseTicker: Sendable {
    let phase: String
    let measurements: Measurements
    var recorder: Recorder? = nil
    let log: @Sendable (String) -> Void

    /// Prints a line each second until the task is cancelled; warns once when the hub rate-limits locations.
    func run(from start: UInt64) async {
        var last = measurements.counterValues
        var warned = false
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard !Task.isCancelled else { return }
            let now = measurements.counterValues
            func delta(_ counter: Measurements.Counter) -> Int { now[counter.rawValue] - last[counter.rawValue] }
            let recent = measurements.takeRecentLocation()
            let elapsed = Double(MonotonicClock.nanoseconds() - start) / 1e9
            let open = now[Measurements.Counter.connectionsOpen.rawValue]
            recorder?.window(
                sent: delta(.locationsSent), received: delta(.locationsReceived), latency: recent, open: open,
                reconnects: delta(.reconnects), errors: delta(.errorFrames), drops: delta(.drops)
            )
            let faults = now[Measurements.Counter.reconnects.rawValue] + now[Measurements.Counter.drops.rawValue]
            log(
                "\(phase) \(String(format: "%5.1f", elapsed)) s  connections \(Format.count(open))"
                    + "  out \(Format.count(delta(.framesOut)))/s  in \(Format.count(delta(.framesIn)))/s"
                    + "  locations \(Format.count(delta(.locationsSent)))/s"
                    + "  trip changes \(delta(.tripCreates) + delta(.tripAccepts) + delta(.tripProgress) + delta(.tripsCompleted) + delta(.tripCancels))/s"
                    + "  p99 location \(recent.count > 0 ? Format.milliseconds(recent.p99) + " ms" : "–")"
                    + (faults > 0 ? "  reconnects \(delta(.reconnects))/s  drops \(delta(.drops))/s  errors \(delta(.errorFrames))/s" : "")
            )
            if !warned, let limited = measurements.errorCounts["rate_limited"], limited > 0 {
                warned = true
                log(Self.rateLimitWarning(limited))
            }
            last = now
        }
    }

    static func rateLimitWarning(_ count: Int) -> String {
        "WARNING: the hub answered \(count) location updates with rate_limited: start it with --location-rate-limit at or above --gps-hz (e.g. 100), or the load is not what it claims"
    }
}
