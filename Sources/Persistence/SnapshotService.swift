import Hub
import Logging
import ServiceLifecycle

/// Moves the hub's changes to the store every `interval`, off the actors and off the hot path.
///
/// A failing store never stops the hub: the changes go back to the tracker, the loop backs off
/// (interval × 2ⁿ, at most 30 s) and retries, and `status` reports the fault to health checks
/// and metrics. Graceful shutdown or cancellation ends the loop with a final flush, so nothing
/// the hub recorded is left behind.
public struct SnapshotService: Service {
    /// Longest wait between attempts while the store keeps failing (unless `interval` is longer).
    static let maxBackoff = Duration.seconds(30)
    /// How often the final flush is tried, and the pause between tries.
    static let finalAttempts = 5
    static let finalRetryDelay = Duration.milliseconds(200)

    private let store: any SnapshotStore
    private let tracker: ChangeTracker
    private let interval: Duration
    private let status: SnapshotStatus
    private let logger: Logger
    private let onPersisted: @Sendable (ChangeSet) async -> Void
    private let journal: TripJournal?

    /// - Parameters:
    ///   - journal: the single hub's write-ahead journal: each snapshot closes its current
    ///     segment before it drains the changes, and deletes the closed segments once written.
    ///   - onPersisted: called with each written set after its write succeeded (the hub
    ///     evicts finished trips with it).
    public init(
        store: any SnapshotStore, tracker: ChangeTracker, interval: Duration, status: SnapshotStatus,
        logger: Logger, journal: TripJournal? = nil, onPersisted: @escaping @Sendable (ChangeSet) async -> Void = { _ in }
    ) {
        self.journal = journal
        self.store = store
        self.tracker = tracker
        self.interval = interval
        self.status = status
        self.logger = logger
        self.onPersisted = onPersisted
    }

    public func run() async throws {
        var failures = 0
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let delay = Self.delay(afterFailures: failures, interval: interval)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            do {
                try await flush()
                if failures > 0 {
                    logger.info("Snapshot store recovered", metadata: ["failed_attempts": "\(failures)"])
                }
                failures = 0
            } catch {
                if Task.isCancelled { break }
                failures += 1
                logger.error(
                    "Snapshot failed; changes kept for the next attempt",
                    metadata: [
                        "error": "\(error)", "consecutive_failures": "\(failures)",
                        "pending": "\(tracker.pendingCount)",
                        "retry_in": "\(Self.delay(afterFailures: failures, interval: interval))",
                    ]
                )
            }
        }
        await finalFlush()
    }

    /// One snapshot now: takes every pending change and writes it. On failure the changes go back
    /// to the tracker (newer values recorded meanwhile win) and the error is rethrown.
    ///
    /// Call it from one task at a time (`run()` is the usual caller): two overlapping flushes could
    /// land an older value of an entity after a newer one.
    public func flush() async throws {
        // Closed before the drain: every change in the closed segments is in this drain or was
        // written by an earlier snapshot (see `TripJournal`).
        let closedSegment = await journal?.rotate()
        let changes = tracker.drain()
        guard !changes.isEmpty else {
            status.recordNothingPending(at: .now())
            try await dropJournal(through: closedSegment)
            return
        }
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try await store.write(changes)
        } catch {
            tracker.restore(changes)
            status.recordFailure(error, at: .now())
            throw error
        }
        status.recordWrite(count: changes.count, duration: start.duration(to: clock.now), at: .now())
        logger.debug("Snapshot written", metadata: ["entities": "\(changes.count)"])
        await onPersisted(changes)
        try await dropJournal(through: closedSegment)
    }

    private func dropJournal(through segment: UInt64?) async throws {
        guard let journal, let segment, segment > 0 else { return }
        try await journal.dropSegments(through: segment)
    }

    /// The wait before the next flush after `failures` consecutive failed ones.
    static func delay(afterFailures failures: Int, interval: Duration) -> Duration {
        guard failures > 0 else { return interval }
        return min(interval * (1 << min(failures, 20)), max(interval, maxBackoff))
    }

    /// Writes what is still pending when the loop ends, retrying briefly since it is the last
    /// chance. It runs in a task of its own because the store refuses work from a cancelled task.
    private func finalFlush() async {
        await Task {
            for attempt in 1...Self.finalAttempts {
                do {
                    try await flush()
                    return
                } catch {
                    logger.error("Final snapshot failed", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                    if attempt < Self.finalAttempts {
                        try? await Task.sleep(for: Self.finalRetryDelay)
                    }
                }
            }
            logger.critical("Changes were not persisted", metadata: ["pending": "\(tracker.pendingCount)"])
        }.value
    }
}
