import NIOCore

/// Runs Swift tasks on a socket's NIO event loop: the task that handles a client's messages runs
/// on the thread that read them, and frames it writes go out without a hop between threads. (The
/// trip actors it awaits run on event loops too, see `EventLoopTripExecutors`.)
///
/// Measured under load (docs/benchmarks-history.md), waking a thread of Swift's pool for every message and
/// hopping back to the event loop for every write took more of the hub's CPU than its own work.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
