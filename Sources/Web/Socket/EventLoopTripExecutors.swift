import Hub
import NIOCore

/// Runs each trip actor on an event loop: the loop of the connection that opened the trip (its
/// rider's), so the trip's events reach the rider's socket without a hop between threads; a trip
/// restored from the store takes the group's next loop. A GPS fix read on a trip's loop is
/// recorded right there, without a task (`ClientSession.record(_:on:)`). The trip's own tasks
/// start on the same loop.
struct EventLoopTripExecutors: TripExecutors {
    let group: any EventLoopGroup

    func placement(forTripOpenedBy creator: (any Mailbox)?) -> TripPlacement {
        let tasks = (creator as? ClientConnection)?.executor ?? EventLoopTaskExecutor(group.next())
        return TripPlacement(executor: tasks.eventLoop.executor, tasks: tasks)
    }
}
