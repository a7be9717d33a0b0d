import Synchronization

/// Slows password guessing down: log-in attempts are counted per client address (every attempt)
/// and per username (the failed ones), each in a token bucket (`RateLimiter`) that holds a
/// minute's worth of attempts and refills at that rate. An attempt refused here costs no bcrypt
/// work. Buckets that have refilled are dropped once a minute, so what it keeps is bounded by the
/// last minute's attempts.
final class LoginThrottle: Sendable {
    /// Why an attempt was refused, and how many whole seconds until one more is allowed.
    struct Refusal: Equatable {
        enum Scope: String, CaseIterable {
            case address
            case username
        }

        let scope: Scope
        let retryAfter: Int
    }

    private struct State {
        var addresses: [String: RateLimiter] = [:]
        var usernames: [String: RateLimiter] = [:]
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
            var user = state.usernames[username] ?? Self.bucket(perMinute: perUsername, now: now)
            let userWait = user.secondsUntilAllowed(now: now)
            state.usernames[username] = user
            if userWait > 0 { return Refusal(scope: .username, retryAfter: Self.wholeSeconds(userWait)) }
            guard let address else { return nil }
            var bucket = state.addresses[address] ?? Self.bucket(perMinute: perAddress, now: now)
            let addressWait = bucket.secondsUntilAllowed(now: now)
            if addressWait == 0 { _ = bucket.allow(now: now) }
            state.addresses[address] = bucket
            return addressWait > 0 ? Refusal(scope: .address, retryAfter: Self.wholeSeconds(addressWait)) : nil
        }
    }

    /// Counts a wrong password (or an unknown username) against the username.
    func failed(username: String, now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            _ = state.usernames[username, default: Self.bucket(perMinute: perUsername, now: now)].allow(now: now)
        }
    }

    /// Buckets kept (for tests of the bound).
    var trackedCount: Int {
        state.withLock { $0.addresses.count + $0.usernames.count }
    }

    private static func bucket(perMinute: Double, now: ContinuousClock.Instant) -> RateLimiter {
        RateLimiter(perSecond: perMinute / 60, burst: perMinute, now: now)
    }

    private static func wholeSeconds(_ seconds: Double) -> Int {
        max(1, Int(seconds.rounded(.up)))
    }

    private func sweepIfDue(_ state: inout State, now: ContinuousClock.Instant) {
        guard now - state.lastSweep >= .seconds(60) else { return }
        state.lastSweep = now
        state.addresses = state.addresses.filter { !$0.value.isFull(now: now) }
        state.usernames = state.usernames.filter { !$0.value.isFull(now: now) }
    }
}
