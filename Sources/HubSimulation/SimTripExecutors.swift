import Hub

/// Gives every trip actor a serial executor of its own in the simulation's scheduler, so the
/// seed decides when each actor's jobs run; the hub's own tasks run on lanes of it too.
struct SimTripExecutors: TripExecutors {
    let scheduler: SimScheduler

    func executor(forTripOpenedBy creator: (any Mailbox)?) -> any SerialExecutor {
        scheduler.makeActorExecutor()
    }

    func spawn(_ work: @escaping @Sendable () async -> Void) {
        Task(executorPreference: scheduler.makeTaskExecutor()) { await work() }
    }
}
