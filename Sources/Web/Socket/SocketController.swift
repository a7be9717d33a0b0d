import Hub
import Hummingbird
import HummingbirdWebSocket
import Logging
import Persistence
import NIOCore

/// The `/taxi/?token=` WebSocket: admits authenticated clients under the connection cap,
/// joins them to their groups, and runs each session's inbound loop and outbound writer
/// until both have ended.
struct SocketController: Sendable {
    let hub: Hub
    let store: any SnapshotStore
    let auth: Authenticator
    let connections: ConnectionRegistry
    let metrics: HubMetrics
    let maxMessageSize: Int
    let queueLength: Int
    let locationRate: Double

    static let path: RouterPath = "/taxi/"
    static let overflowGrace: TimeAmount = .seconds(5)
    static let closeGrace: Duration = .seconds(5)

    /// Why a handshake is refused.
    enum Refusal: Error {
        case unauthorized
        case unavailable(String)
    }

    /// Checks that sockets are accepted and the token is good; used by the upgrade and by
    /// the plain-HTTP fallback.
    func admit(_ request: Request) async -> Result<User, Refusal> {
        if let reason = connections.refusal { return .failure(.unavailable(reason)) }
        guard let token = request.uri.queryParameters.get("token"), let user = await auth.user(forToken: token) else {
            return .failure(.unauthorized)
        }
        return .success(user)
    }

    func addRoutes(to router: Router<SocketRequestContext>) {
        router.ws(Self.path) { request, _ in
            switch await admit(request) {
            case .success: .upgrade([:])
            case .failure: .dontUpgrade
            }
        } onUpgrade: { inbound, outbound, context in
            guard let token = context.request.uri.queryParameters.get("token"), let user = await auth.user(forToken: token) else {
                return
            }
            await run(
                user: user, inbound: inbound, outbound: outbound, channel: context.requestContext.channel, logger: context.logger
            )
        }
    }

    /// A request for `/taxi/` that was not upgraded ends here with the reason.
    func addFallbackRoute(to router: Router<BasicRequestContext>) {
        router.get(Self.path) { request, _ -> Response in
            switch await admit(request) {
            case .failure(.unavailable(let reason)):
                throw APIError.detail(.serviceUnavailable, reason)
            case .failure(.unauthorized):
                throw APIError.detail(.unauthorized, "A valid access token is required (?token=).", code: "token_not_valid")
            case .success:
                throw APIError.detail(.upgradeRequired, "This endpoint only speaks WebSocket.")
            }
        }
    }

    private func run(
        user: User, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, channel: any Channel, logger: Logger
    ) async {
        guard let slot = connections.reserve() else {
            try? await outbound.close(.unknown(1013), reason: "The hub is at its connection limit; try again later.")
            return
        }
        defer { connections.release(slot) }
        metrics.connectionOpened()
        defer { metrics.connectionClosed() }
        let connection = ClientConnection(id: ConnectionID(slot), user: user, queueLength: queueLength) {
            // The writer may be stuck on a client that reads nothing; it gets a grace period to
            // send its 1008 close, then the socket is closed under it.
            channel.eventLoop.scheduleTask(in: Self.overflowGrace) { channel.close(promise: nil) }
        }
        connections.register(connection)
        var logger = logger
        logger[metadataKey: "connection"] = "\(slot)"
        logger[metadataKey: "user.id"] = "\(user.id)"
        logger.info("connection opened", metadata: ["user.group": "\(user.group.rawValue)"])
        connection.joined(await hub.connect(connection.principal, mailbox: connection))
        let session = ClientSession(
            hub: hub, store: store, connection: connection, metrics: metrics, maxMessageSize: maxMessageSize,
            locationRate: locationRate, logger: logger
        )
        // The writer runs as the one child task; the reader runs in this task, so a connection
        // costs one task beyond the library's own.
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await session.writeLoop(outbound)
                // When the hub closed first (overflow, shutdown), the reader goes on consuming until
                // the client answers the close: a socket closed with unread input is reset, and the
                // client would lose our close frame. Past the grace period the socket is closed.
                guard connection.closeReason != .clientClosed else { return }
                try? await Task.sleep(for: Self.closeGrace)
                try? await channel.close()
            }
            await session.readLoop(inbound)
            connection.close(.clientClosed)
        }
        await hub.disconnect(connection.principal, mailbox: connection, joined: connection.joinedTrips)
        logger.info("connection closed", metadata: ["reason": "\(connection.closeReason.map { "\($0)" } ?? "unknown")"])
    }
}
