import Synchronization

/// A `CommitLog` that groups commits: while one batch is being written, every change appended
/// waits for the next, so a busy hub pays one write (and one `fsync` or one database round trip)
/// for many changes, and an idle one writes each change at once.
///
/// It owns the bookkeeping (positions, the durable mark, the waiters); `write` does the I/O and
/// is called for one batch at a time, in order. A `write` that throws ends the log: every waiter,
/// present and future, gets `CommitFailure.unavailable`, and `onFailure` runs once (the server
/// stops the process there, since changes it holds in memory may never become durable).
public final class GroupCommitLog: CommitLog {
    /// Writes one batch durably, or throws. Batches arrive one at a time, oldest first.
    public typealias Write = @Sendable ([DurableChange]) async throws -> Void
    public typealias Callback = @Sendable (HubError?) -> Void

    /// What one commit did, for metrics.
    public struct CommitRecord: Sendable {
        public let changes: Int
        public let duration: Duration
    }

    private struct State {
        var pending: [DurableChange] = []
        var appended: CommitPosition = 0
        var waiters: [(position: CommitPosition, done: Callback)] = []
        var failure: HubError?
        var writing = false
    }

    private let state = Mutex(State())
    private let durable = Atomic<UInt64>(0)
    private let write: Write
    private let onFailure: @Sendable (any Error) -> Void
    private let onCommit: @Sendable (CommitRecord) -> Void
    private let spawn: @Sendable (@escaping @Sendable () async -> Void) -> Void

    /// - Parameters:
    ///   - write: makes one batch durable.
    ///   - spawn: starts the task that writes batches (a plain task by default; the simulator's
    ///     scheduler runs it on a lane of its own).
    ///   - onCommit: told of every successful commit (its size and time), for metrics.
    ///   - onFailure: told once, of the error that ended the log.
    public init(
        write: @escaping Write, onCommit: @escaping @Sendable (CommitRecord) -> Void = { _ in },
        onFailure: @escaping @Sendable (any Error) -> Void = { _ in },
        spawn: @escaping @Sendable (@escaping @Sendable () async -> Void) -> Void = { work in Task { await work() } }
    ) {
        self.spawn = spawn
        self.write = write
        self.onCommit = onCommit
        self.onFailure = onFailure
    }

    public func append(_ change: DurableChange) -> CommitPosition {
        let (position, startWriter) = state.withLock { state -> (CommitPosition, Bool) in
            state.appended += 1
            state.pending.append(change)
            guard !state.writing, state.failure == nil else { return (state.appended, false) }
            state.writing = true
            return (state.appended, true)
        }
        if startWriter { spawn { await self.writeBatches() } }
        return position
    }

    public func isDurable(_ position: CommitPosition) -> Bool {
        durable.load(ordering: .acquiring) >= position
    }

    public func whenDurable(_ position: CommitPosition, _ done: @escaping Callback) {
        let failure: HubError?? = state.withLock { state in
            if durable.load(ordering: .acquiring) >= position { return .some(nil) }
            if let failure = state.failure { return .some(failure) }
            state.waiters.append((position, done))
            return .none
        }
        if let failure { done(failure) }
    }

    /// Everything appended but not yet durable.
    public var pendingCount: Int {
        state.withLock { Int($0.appended - durable.load(ordering: .relaxed)) }
    }

    /// Writes batches until nothing is pending; one such loop runs at a time.
    private func writeBatches() async {
        let clock = ContinuousClock()
        while true {
            let (batch, through) = state.withLock { state -> ([DurableChange], CommitPosition) in
                defer { state.pending.removeAll(keepingCapacity: true) }
                if state.pending.isEmpty { state.writing = false }
                return (state.pending, state.appended)
            }
            guard !batch.isEmpty else { return }
            let start = clock.now
            do {
                try await write(batch)
            } catch {
                fail(error)
                return
            }
            onCommit(CommitRecord(changes: batch.count, duration: start.duration(to: clock.now)))
            let ready = state.withLock { state -> [Callback] in
                durable.store(through, ordering: .releasing)
                var ready: [Callback] = []
                state.waiters.removeAll { waiter in
                    guard waiter.position <= through else { return false }
                    ready.append(waiter.done)
                    return true
                }
                return ready
            }
            for done in ready { done(nil) }
        }
    }

    private func fail(_ error: any Error) {
        let failure = CommitFailure.unavailable("\(error)")
        let waiters = state.withLock { state in
            state.failure = failure
            state.writing = false
            defer { state.waiters = [] }
            return state.waiters
        }
        onFailure(error)
        for waiter in waiters { waiter.done(failure) }
    }
}
