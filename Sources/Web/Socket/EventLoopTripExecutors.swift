import Hub
import NIOCore

/// Runs each trip actor on an event loop: the loop of the connection that opened the trip (its
/// rider's), so the trip's events reach the rider's socket without a hop between threads; a trip
/// restored from the store takes the group's next loop. The trip's own tasks start on the same
/// loop, and a GPS fix read on another loop reaches it as one plain job there (`Hub.recordFix`).
struct EventLoopTripExecutors: TripExecutors {
    let group: any EventLoopGroup

    func placement(forTripOpenedBy creator: (any Mailbox)?) -> TripPlacement {
        let tasks = (creator as? ClientConnection)?.executor ?? EventLoopTaskExecutor(group.next())
        return TripPlacement(executor: tasks.eventLoop.executor, tasks: tasks, jobs: EventLoopJobQueue(loop: tasks.eventLoop))
    }
}

/// A trip's plain jobs on its event loop: NIO runs a loop's tasks in the order submitted, among
/// the jobs of the actors on it.
struct EventLoopJobQueue: TripJobQueue {
    let loop: any EventLoop

    var isCurrent: Bool { loop.inEventLoop }

    func enqueue(_ job: @escaping @Sendable () -> Void) {
        loop.execute(job)
    }

    func drain() async {
        try? await loop.submit {}.get()
    }
}
