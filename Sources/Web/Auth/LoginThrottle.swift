import Synchronization

/// Slows password guessing down: log-in attempts are counted per client address (every attempt)
/// and per username (the failed ones), each in a token bucket that holds a minute's worth of
/// attempts and refills at that rate. An attempt refused here costs no bcrypt work. Buckets that
/// have refilled are dropped once a minute, so what it keeps is bounded by the last minute's
/// attempts.
final class LoginThrottle: Sendable {
    /// Why an attempt was refused, and how many whole seconds until one more is allowed.
    struct Refusal: Equatable {
        enum Scope: String {
            case address
            case username
        }

        let scope: Scope
        let retryAfter: Int
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private struct State {
        var addresses: [String: Bucket] = [:]
        var usernames: [String: Bucket] = [:]
        var lastSweep: ContinuousClock.Instant
    }

    /// Attempts per minute from one address, and failed attempts per minute for one username.
    let perAddress: Double
    let perUsername: Double
    private let state: Mutex<State>

    init(perAddress: Double, perUsername: Double, now: ContinuousClock.Instant = .now) {
        self.perAddress = perAddress
        self.perUsername = perUsername
        state = Mutex(State(lastSweep: now))
    }

    /// Counts an attempt against its address; nil when it may go on to the password check.
    func admit(address: String?, username: String, now: ContinuousClock.Instant = .now) -> Refusal? {
        state.withLock { state in
            sweepIfDue(&state, now: now)
            if let wait = Self.take(from: &state.usernames, key: username, rate: perUsername, now: now, spend: false) {
                return Refusal(scope: .username, retryAfter: wait)
            }
            if let address, let wait = Self.take(from: &state.addresses, key: address, rate: perAddress, now: now, spend: true) {
                return Refusal(scope: .address, retryAfter: wait)
            }
            return nil
        }
    }

    /// Counts a wrong password (or an unknown username) against the username.
    func failed(username: String, now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            _ = Self.take(from: &state.usernames, key: username, rate: perUsername, now: now, spend: true)
        }
    }

    /// Buckets kept (for tests of the bound).
    var trackedCount: Int {
        state.withLock { $0.addresses.count + $0.usernames.count }
    }

    /// Refills the bucket of `key`; with a whole attempt in it, spends it (when `spend`) and
    /// returns nil, else returns the seconds until there is one.
    private static func take(
        from buckets: inout [String: Bucket], key: String, rate: Double, now: ContinuousClock.Instant, spend: Bool
    ) -> Int? {
        var bucket = refilled(buckets[key] ?? Bucket(tokens: rate, updated: now), rate: rate, now: now)
        defer { buckets[key] = bucket }
        guard bucket.tokens >= 1 else {
            return max(1, Int(((1 - bucket.tokens) * 60 / rate).rounded(.up)))
        }
        if spend { bucket.tokens -= 1 }
        return nil
    }

    private static func refilled(_ bucket: Bucket, rate: Double, now: ContinuousClock.Instant) -> Bucket {
        let elapsed = now - bucket.updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Bucket(tokens: min(rate, bucket.tokens + seconds * rate / 60), updated: now)
    }

    private func sweepIfDue(_ state: inout State, now: ContinuousClock.Instant) {
        guard now - state.lastSweep >= .seconds(60) else { return }
        state.lastSweep = now
        state.addresses = state.addresses.filter { Self.refilled($0.value, rate: perAddress, now: now).tokens < perAddress }
        state.usernames = state.usernames.filter { Self.refilled($0.value, rate: perUsername, now: now).tokens < perUsername }
    }
}
