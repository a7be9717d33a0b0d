/// Chooses where each trip actor runs (SE-0392 custom actor executors), where its own tasks
/// start, and how plain jobs reach it.
///
/// The server runs a trip on the event loop of the connection that opened it, so the trip's
/// events reach that connection's socket without a hop between threads, and a GPS fix read on
/// that loop is recorded right there (`Hub.recordFix`). A hub without `TripExecutors` runs every
/// trip actor on a queue of its own, like any default actor, and its tasks on Swift's global pool.
public protocol TripExecutors: Sendable {
    /// Where a trip opened by `creator` runs; `creator` is nil for a trip restored from the store.
    func placement(forTripOpenedBy creator: (any Mailbox)?) -> TripPlacement
}

/// Where one trip actor runs; where the tasks it starts itself (releasing held events once their
/// commit is durable) run, beside the actor so that waking it costs no hop between threads; and
/// the queue of plain jobs on the actor's executor that carries GPS fixes to it without a task.
/// The simulator gives all three lanes of its scheduler, so the seed decides when they run.
public struct TripPlacement: Sendable {
    public let executor: any SerialExecutor
    public let tasks: (any TaskExecutor)?
    public let jobs: any TripJobQueue

    public init(executor: any SerialExecutor, tasks: (any TaskExecutor)?, jobs: any TripJobQueue) {
        self.executor = executor
        self.tasks = tasks
        self.jobs = jobs
    }
}

/// Runs plain, synchronous jobs on a trip actor's serial executor, in the order enqueued and
/// among the actor's own jobs, without a task: how a GPS fix reaches its trip (`Hub.recordFix`).
/// A job may assume the actor's isolation (`assumeIsolated`): it runs on the actor's executor,
/// which runs one job at a time.
public protocol TripJobQueue: Sendable {
    /// True when the caller runs on the actor's executor right now: a job may then run inline.
    var isCurrent: Bool { get }
    /// Runs `job` on the actor's executor after everything enqueued there before it.
    func enqueue(_ job: @escaping @Sendable () -> Void)
    /// Returns once every job enqueued before the call has run.
    func drain() async
}
