import Hub
import Synchronization

/// What the snapshot loop last did, shared with `/readyz` and `/metrics` so they can tell how
/// far durable state lags behind the hub, and why, without asking the store.
public final class SnapshotStatus: Sendable {
    /// A consistent copy of the status at one moment.
    public struct Snapshot: Sendable, Equatable {
        /// When the status was created, which is when the snapshot loop began.
        public var started: Timestamp
        /// The last flush, successful or not.
        public var lastAttempt: Timestamp?
        /// The last time the store held every change recorded up to then: a successful write,
        /// or a flush that found nothing pending.
        public var lastSuccess: Timestamp?
        /// Why the last failed write failed; nil again after a success.
        public var lastError: String?
        public var consecutiveFailures: Int
        /// Entities in the last successful write.
        public var lastWriteCount: Int
        public var lastWriteDurationSeconds: Double
        /// Successful writes since start (flushes with nothing pending do not count).
        public var totalWrites: Int
        /// Failed writes since start.
        public var totalFailures: Int

        /// Seconds since the store last held everything, or since start when it never has.
        public func lagSeconds(now: Timestamp = .now()) -> Double {
            let since = lastSuccess ?? started
            return Double(max(0, now.microseconds - since.microseconds)) / 1_000_000
        }
    }

    private let state: Mutex<Snapshot>

    public init(started: Timestamp = .now()) {
        state = Mutex(
            Snapshot(
                started: started, lastAttempt: nil, lastSuccess: nil, lastError: nil, consecutiveFailures: 0,
                lastWriteCount: 0, lastWriteDurationSeconds: 0, totalWrites: 0, totalFailures: 0
            )
        )
    }

    public var current: Snapshot {
        state.withLock { $0 }
    }

    /// Seconds since the store last held everything, or since start when it never has.
    public func lagSeconds(now: Timestamp = .now()) -> Double {
        current.lagSeconds(now: now)
    }

    func recordNothingPending(at now: Timestamp) {
        state.withLock { state in
            state.lastAttempt = now
            state.lastSuccess = now
        }
    }

    func recordWrite(count: Int, duration: Duration, at now: Timestamp) {
        state.withLock { state in
            state.lastAttempt = now
            state.lastSuccess = now
            state.lastError = nil
            state.consecutiveFailures = 0
            state.lastWriteCount = count
            let parts = duration.components
            state.lastWriteDurationSeconds = Double(parts.seconds) + Double(parts.attoseconds) / 1e18
            state.totalWrites += 1
        }
    }

    func recordFailure(_ error: any Error, at now: Timestamp) {
        state.withLock { state in
            state.lastAttempt = now
            state.lastError = String(describing: error)
            state.consecutiveFailures += 1
            state.totalFailures += 1
        }
    }
}
