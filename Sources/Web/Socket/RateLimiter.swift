/// A token bucket: `rate` actions per second on average, bursts of up to `burst` at once
/// (by default `rate`). A socket's limiters are owned by its read loop; the log-in throttle
/// keeps one per address and per username.
struct RateLimiter {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var lastRefill: ContinuousClock.Instant

    init(perSecond rate: Double, burst: Double? = nil, now: ContinuousClock.Instant = .now) {
        self.rate = rate
        self.burst = burst ?? rate
        self.tokens = burst ?? rate
        self.lastRefill = now
    }

    /// Takes one token if there is one.
    mutating func allow(now: ContinuousClock.Instant = .now) -> Bool {
        refill(now: now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Seconds until a token is there (0 when one is now); takes none.
    mutating func secondsUntilAllowed(now: ContinuousClock.Instant = .now) -> Double {
        refill(now: now)
        return tokens >= 1 ? 0 : (1 - tokens) / rate
    }

    /// Whether the bucket has refilled completely by `now`: it remembers nothing then.
    func isFull(now: ContinuousClock.Instant = .now) -> Bool {
        tokens + (now - lastRefill).seconds * rate >= burst
    }

    private mutating func refill(now: ContinuousClock.Instant) {
        tokens = min(burst, tokens + (now - lastRefill).seconds * rate)
        lastRefill = now
    }
}
