/// A token bucket: `rate` actions per second on average, bursts of up to `rate` at once.
/// One per connection, owned by its read loop (no locking).
struct RateLimiter {
    let rate: Double
    private var tokens: Double
    private var lastRefill: ContinuousClock.Instant

    init(perSecond rate: Double, now: ContinuousClock.Instant = .now) {
        self.rate = rate
        self.tokens = rate
        self.lastRefill = now
    }

    /// Takes one token if there is one.
    mutating func allow(now: ContinuousClock.Instant = .now) -> Bool {
        let elapsed = now - lastRefill
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        tokens = min(rate, tokens + seconds * rate)
        lastRefill = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
