/// Chooses where each trip actor runs (SE-0392 custom actor executors) and where its own tasks
/// start.
///
/// The server runs a trip on the event loop of the connection that opened it, so the trip's
/// events reach that connection's socket without a hop between threads, and a GPS fix read on
/// that loop is recorded right there (see `TripActor.executor`). A hub without `TripExecutors`
/// runs every trip actor on a queue of its own, like any default actor, and its tasks on Swift's
/// global pool.
public protocol TripExecutors: Sendable {
    /// Where a trip opened by `creator` runs; `creator` is nil for a trip restored from the store.
    func placement(forTripOpenedBy creator: (any Mailbox)?) -> TripPlacement
}

/// Where one trip actor runs, and where the tasks it starts itself (releasing held events once
/// their commit is durable) run: beside the actor, so waking it costs no hop between threads.
/// The simulator gives both lanes of its scheduler, so the seed decides when they run.
public struct TripPlacement: Sendable {
    public let executor: any SerialExecutor
    public let tasks: (any TaskExecutor)?

    public init(executor: any SerialExecutor, tasks: (any TaskExecutor)?) {
        self.executor = executor
        self.tasks = tasks
    }
}
