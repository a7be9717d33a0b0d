import Hub
import NIOCore

/// Runs each trip actor on an event loop: the loop of the connection that opened the trip (its
/// rider's), so the trip's events reach the rider's socket without a hop between threads; a trip
/// restored from the store takes the group's next loop. A GPS fix read on a trip's loop is
/// recorded right there, without a task (`ClientSession.record(_:on:)`).
struct EventLoopTripExecutors: TripExecutors {
    let group: any EventLoopGroup

    func executor(forTripOpenedBy creator: (any Mailbox)?) -> any SerialExecutor {
        ((creator as? ClientConnection)?.executor.eventLoop ?? group.next()).executor
    }
}
