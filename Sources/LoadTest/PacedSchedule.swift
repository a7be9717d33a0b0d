import BenchSupport

/// Fires `hz` times per second for each of `slots` senders, spread evenly: the k-th firing is
/// due at start + k / (slots × hz) and goes to slot k mod `slots`. Each firing is handed its
/// scheduled time, and latency is measured from it, so a sender that falls behind (a busy
/// machine) shows up as latency instead of hiding it (no coordinated omission).
struct PacedSchedule: Sendable {
    let slots: Int
    let hz: Double

    /// Fires from `start` until `end` (monotonic nanoseconds); returns how many firings there were.
    @discardableResult
    func run(from start: UInt64, until end: UInt64, _ fire: (_ slot: Int, _ scheduledAt: UInt64) -> Void) async -> Int {
        guard slots > 0 else { return 0 }
        let interval = 1e9 / (Double(slots) * hz)
        var fired = 0
        while true {
            let now = MonotonicClock.nanoseconds()
            guard now < end else { return fired }
            let due = now < start ? 0 : Int(Double(now - start) / interval) + 1
            while fired < due {
                fire(fired % slots, start + UInt64(Double(fired) * interval))
                fired += 1
            }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }
}
