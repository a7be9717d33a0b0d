import Hub

/// Gives every trip actor a serial executor of its own in the simulation's scheduler, and its
/// tasks a lane of their own, so the seed decides when each of them runs.
struct SimTripExecutors: TripExecutors {
    let scheduler: SimScheduler

    func placement(forTripOpenedBy creator: (any Mailbox)?) -> TripPlacement {
        TripPlacement(executor: scheduler.makeActorExecutor(), tasks: scheduler.makeTaskExecutor())
    }
}
