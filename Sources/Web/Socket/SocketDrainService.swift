import Hummingbird
import Logging
import ServiceLifecycle

/// On graceful shutdown, closes every WebSocket with 1001 ("going away") and waits for the
/// sessions to end, before the HTTP server itself stops. Run it after the application in the
/// same service group so that it is shut down first.
struct SocketDrainService: Service {
    let connections: ConnectionRegistry
    let logger: Logger
    /// How long clients get to complete the closing handshake.
    var grace: Duration = .seconds(5)

    func run() async throws {
        try? await gracefulShutdown()
        let open = connections.count
        connections.drain()
        logger.info("closing \(open) WebSockets with 1001")
        let deadline = ContinuousClock.now + grace
        while connections.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
