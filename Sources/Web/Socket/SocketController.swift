import Hub
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOWebSocket
import Persistence

/// The `/taxi/?token=` WebSocket: admits authenticated clients under the connection cap and
/// builds each admitted socket's session (`HubSocketChannel` does the upgrade itself).
struct SocketController: Sendable {
    let hub: Hub
    let store: any SnapshotStore
    let auth: Authenticator
    let connections: ConnectionRegistry
    let metrics: HubMetrics
    /// Where operator sockets get the live map and stats.
    let operators: OperatorFeed
    let maxMessageSize: Int
    let queueLength: Int
    /// How long a client the hub closed has before its connection is cut.
    let closeGrace: Duration
    let locationRate: Double
    /// Messages besides locations one socket may send per second.
    let messageRate: Double
    /// Where a bare echo socket is served for load-test baselines (`benchRoutes`); nil: nowhere.
    var echoPath: String? = nil

    static let path = "/taxi/"

    /// Why a handshake is refused.
    enum Refusal: Error {
        case unauthorized
        case unavailable(String)
        /// The user holds as many sockets as one user may.
        case tooManyForUser(Int)
    }

    /// A handshake that may become a socket: a client of the hub, or a bare echo.
    enum Admission: Sendable {
        case session(User)
        case echo
    }

    /// Checks that sockets are accepted and the token is good.
    func admit(token: String?) async -> Result<User, Refusal> {
        if let reason = connections.refusal { return .failure(.unavailable(reason)) }
        guard let token, let user = await auth.user(forToken: token) else {
            return .failure(.unauthorized)
        }
        guard !connections.isAtUserLimit(user.id) else { return .failure(.tooManyForUser(connections.perUserLimit)) }
        return .success(user)
    }

    /// The verdict on an upgrade request for `uri`: a socket for whom, or the error response.
    func admitUpgrade(uri: String) async -> Result<Admission, APIError> {
        let uri = URI(uri)
        if let echoPath, uri.path == echoPath {
            return .success(.echo)
        }
        guard uri.path == Self.path else {
            metrics.httpRefused(status: 404)
            return .failure(APIError.notFound)
        }
        switch await admit(token: uri.queryParameters.get("token")) {
        case .success(let user): return .success(.session(user))
        case .failure(let refusal):
            let response = Self.response(to: refusal)
            metrics.httpRefused(status: response.status.code)
            return .failure(response)
        }
    }

    /// What a refused handshake, or a plain `GET /taxi/`, is told.
    static func response(to refusal: Refusal) -> APIError {
        switch refusal {
        case .unavailable(let reason):
            APIError.detail(.serviceUnavailable, reason)
        case .unauthorized:
            APIError.detail(.unauthorized, "A valid access token is required (?token=).", code: "token_not_valid")
        case .tooManyForUser(let limit):
            APIError.detail(
                .tooManyRequests, "This account already has \(limit) open connections, the most allowed; close one first.",
                code: "too_many_connections"
            )
        }
    }

    /// The handler that runs an admitted socket. Past the cap (two handshakes raced for the last
    /// slot), the socket is closed at once with 1013.
    func makeFrameHandler(_ admission: Admission, channel: any Channel, logger: Logger) -> any ChannelHandler {
        let userID: Int? = if case .session(let user) = admission { user.id } else { nil }
        guard let slot = connections.reserve(for: userID) else {
            metrics.socketClosed(.atCapacity)
            return RefusedSocketHandler(reason: "The hub or this account is at its connection limit; try again later.")
        }
        guard case .session(let user) = admission else {
            channel.closeFuture.whenComplete { [connections] _ in connections.release(slot) }
            return EchoFrameHandler()
        }
        var socketLogger = logger
        socketLogger[metadataKey: "connection"] = "\(slot)"
        socketLogger[metadataKey: "user.id"] = "\(user.id)"
        let logger = socketLogger
        let connection = ClientConnection(
            id: ConnectionID(slot), user: user, queueLength: queueLength,
            closeGrace: TimeAmount(closeGrace), channel: channel, metrics: metrics, logger: logger
        )
        connections.register(connection)
        metrics.connectionOpened()
        logger.info("connection opened", metadata: ["user.group": "\(user.group.rawValue)"])
        let session = ClientSession(
            hub: hub, store: store, connection: connection, metrics: metrics, maxMessageSize: maxMessageSize,
            locationRate: locationRate, messageRate: messageRate, logger: logger
        )
        if user.group == .operator { operators.watch(connection) }
        let pump = InboundPump(session: session, channel: channel, executor: connection.executor) { [connections, metrics, operators] in
            operators.stopWatching(connection.connectionID)
            connections.release(slot)
            metrics.connectionClosed()
            logger.info("connection closed", metadata: ["reason": "\(connection.closeReason.map { "\($0)" } ?? "unknown")"])
        }
        return SocketFrameHandler(
            connection: connection, pump: pump, session: session,
            maxMessageSize: ClientSession.transportLimit(forMessageSize: maxMessageSize), metrics: metrics, logger: logger
        )
    }

    /// A request for `/taxi/` that was not upgraded ends here with the reason.
    func addFallbackRoute(to router: Router<HubRequestContext>) {
        router.get(RouterPath(Self.path)) { request, _ -> Response in
            switch await admit(token: request.uri.queryParameters.get("token")) {
            case .failure(let refusal):
                throw Self.response(to: refusal)
            case .success:
                throw APIError.detail(.upgradeRequired, "This endpoint only speaks WebSocket.")
            }
        }
    }
}

/// A bare WebSocket echo: each text or binary frame goes back as it came, nothing else runs.
/// The load test's baseline for what the transport alone costs (never on a public hub).
final class EchoFrameHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)))
                .whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }
}

/// Closes an upgraded socket at once with 1013 ("try again later").
final class RefusedSocketHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let reason: String

    init(reason: String) {
        self.reason = reason
    }

    func handlerAdded(context: ChannelHandlerContext) {
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: .unknown(1013))
        data.writeString(reason)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
            .whenComplete { _ in channel.close(promise: nil) }
    }
}
