import Hub
import Hummingbird
import HummingbirdWebSocket
import Logging
import Persistence
import NIOCore

/// The `/taxi/?token=` WebSocket: admits authenticated clients under the connection cap,
/// joins them to their groups, and runs each session's inbound loop in the connection's own
/// task (the outbound side needs no task while idle).
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
        var logger = logger
        logger[metadataKey: "connection"] = "\(slot)"
        logger[metadataKey: "user.id"] = "\(user.id)"
        let connection = ClientConnection(
            id: ConnectionID(slot), user: user, queueLength: queueLength, socket: outbound, channel: channel,
            metrics: metrics, logger: logger
        )
        connections.register(connection)
        logger.info("connection opened", metadata: ["user.group": "\(user.group.rawValue)"])
        connection.joined(await hub.connect(connection.principal, mailbox: connection))
        let session = ClientSession(
            hub: hub, store: store, connection: connection, metrics: metrics, maxMessageSize: maxMessageSize,
            locationRate: locationRate, logger: logger
        )
        // When the hub closes first (overflow, shutdown), reading goes on until the client answers
        // the close: a socket closed with unread input is reset, and the client would lose our
        // close frame. `ClientConnection` cuts the connection if the answer does not come.
        await session.readLoop(inbound)
        connection.close(.clientClosed)
        await hub.disconnect(connection.principal, mailbox: connection, joined: connection.joinedTrips)
        logger.info("connection closed", metadata: ["reason": "\(connection.closeReason.map { "\($0)" } ?? "unknown")"])
    }
}
