/// Chooses the serial executor each trip actor runs on (SE-0392 custom actor executors), and
/// where the hub starts the little work it does outside any request.
///
/// The server runs a trip on the event loop of the connection that opened it, so the trip's
/// events reach that connection's socket without a hop between threads, and a GPS fix read on
/// that loop is recorded right there (see `TripActor.executor`). A hub without one runs every
/// trip actor on a queue of its own, like any default actor.
public protocol TripExecutors: Sendable {
    /// The executor of a trip opened by `creator`; nil for a trip restored from the store.
    func executor(forTripOpenedBy creator: (any Mailbox)?) -> any SerialExecutor

    /// Starts `work` as a task of its own: a trip actor releasing its held events once their
    /// commit is durable. The simulator starts it on a lane of its scheduler, so the seed decides
    /// when it runs.
    func spawn(_ work: @escaping @Sendable () async -> Void)
}

extension TripExecutors {
    public func spawn(_ work: @escaping @Sendable () async -> Void) {
        Task { await work() }
    }
}
