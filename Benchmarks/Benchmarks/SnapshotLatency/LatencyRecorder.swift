import BenchSupport
import Histogram
import Synchronization

/// Round-trip times of echo replies, in microseconds, one histogram per phase. Every connection's
/// reader records here; the time is taken when the reply is read and measured from the time its
/// message was scheduled (not sent), so a stalled sender cannot hide latency.
final class LatencyRecorder: Sendable {
    private let histograms = Mutex<[Int: Histogram<UInt64>]>([:])
    private let unrecognized = Atomic<Int>(0)

    func received(_ text: String) {
        let now = MonotonicClock.nanoseconds()
        guard let (phase, scheduled) = EchoMessage.parse(text) else {
            unrecognized.add(1, ordering: .relaxed)
            return
        }
        histograms.withLock { histograms in
            Latency.record(from: scheduled, to: now, in: &histograms[phase, default: Latency.emptyHistogram()])
        }
    }

    /// What was recorded for `phase` so far.
    func histogram(phase: Int) -> Histogram<UInt64> {
        histograms.withLock { $0[phase] } ?? Latency.emptyHistogram()
    }

    /// Replies that were not echo messages of this benchmark (errors from the hub, for instance).
    var unrecognizedCount: Int {
        unrecognized.load(ordering: .relaxed)
    }

    /// Waits until `phase` has `expected` replies or `timeout` passed; returns how many it has.
    func waitForReplies(phase: Int, expected: Int, timeout: Duration) async -> Int {
        let deadline = ContinuousClock.now + timeout
        while true {
            let count = Int(histogram(phase: phase).totalCount)
            if count >= expected || ContinuousClock.now >= deadline { return count }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}
