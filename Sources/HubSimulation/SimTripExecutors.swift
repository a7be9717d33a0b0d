import Hub

/// Gives every trip actor a serial executor of its own in the simulation's scheduler, so the
/// seed decides when each actor's jobs run.
struct SimTripExecutors: TripExecutors {
    let scheduler: SimScheduler

    func executor(forTripOpenedBy creator: (any Mailbox)?) -> any SerialExecutor {
        scheduler.makeActorExecutor()
    }
}
