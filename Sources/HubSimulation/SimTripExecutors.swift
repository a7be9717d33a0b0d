import Hub

/// Gives every trip actor a serial executor of its own in the simulation's scheduler, its tasks
/// a lane of their own, and its plain jobs (GPS fixes, `Hub.recordFix`) the actor's lane, so the
/// seed decides when each of them runs.
struct SimTripExecutors: TripExecutors {
    let scheduler: SimScheduler

    func placement(forTripOpenedBy creator: (any Mailbox)?) -> TripPlacement {
        let lane = scheduler.makeActorExecutor()
        return TripPlacement(executor: lane, tasks: scheduler.makeTaskExecutor(), jobs: SimJobQueue(lane: lane))
    }
}

/// A trip's plain jobs, queued in its actor's lane among the actor's own jobs.
struct SimJobQueue: TripJobQueue {
    let lane: SimLaneExecutor

    var isCurrent: Bool { lane.isRunning }

    func enqueue(_ job: @escaping @Sendable () -> Void) {
        lane.enqueue(plain: job)
    }

    func drain() async {
        await withCheckedContinuation { continuation in lane.enqueue(plain: { continuation.resume() }) }
    }
}
