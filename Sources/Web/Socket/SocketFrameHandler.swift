import Logging
import NIOCore
import NIOWebSocket

/// One upgraded `/taxi/` socket in the NIO pipeline: assembles text messages from frames and
/// hands them to the `InboundPump`, answers pings, pings a client that sent nothing for a
/// `pingInterval` (closing it when a pong does not come back within the next), and completes
/// close handshakes. A client that keeps sending (a driver's GPS fixes) proves it is there and
/// is not pinged.
/// Everything here runs on the channel's event loop.
final class SocketFrameHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    static let pingInterval: TimeAmount = .seconds(30)

    private let connection: ClientConnection
    private let pump: InboundPump
    private let session: ClientSession
    /// Longest message assembled from fragments; longer ones close the socket with 1009.
    private let maxMessageSize: Int
    private let metrics: HubMetrics
    private let logger: Logger
    /// The message being assembled from fragments, and whether it is text.
    private var fragments: ByteBuffer?
    private var fragmentsAreText = false
    private var awaitingPong = false
    /// A message came in since the last ping tick.
    private var heardFrom = false
    private var pinging: RepeatedTask?

    init(connection: ClientConnection, pump: InboundPump, session: ClientSession, maxMessageSize: Int, metrics: HubMetrics, logger: Logger) {
        self.connection = connection
        self.pump = pump
        self.session = session
        self.maxMessageSize = maxMessageSize
        self.metrics = metrics
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        pinging = context.eventLoop.scheduleRepeatedTask(initialDelay: Self.pingInterval, delay: Self.pingInterval) { _ in
            loopBound.value.ping(channel)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pinging?.cancel()
        pinging = nil
        pump.end()
        context.fireChannelInactive()
    }

    /// NIO's decoder refused a frame (its protocol error handler has sent the close frame):
    /// counted by reason; the connection is closing.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOWebSocketError {
            metrics.socketClosed(error == .invalidFrameLength ? .tooLarge : .protocolError)
        }
        context.fireErrorCaught(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The server is shutting down gracefully: the client gets 1001.
        if event is ChannelShouldQuiesceEvent {
            connection.close(.shutdown)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            heardFrom = true
            fragments = frame.unmaskedData
            fragmentsAreText = frame.opcode == .text
            finishIfComplete(frame, context: context)
        case .continuation:
            guard var message = fragments else {
                metrics.socketClosed(.protocolError)
            close(context: context, code: .protocolError, reason: "A continuation frame without a message to continue.")
                return
            }
            var data = frame.unmaskedData
            message.writeBuffer(&data)
            fragments = message
            finishIfComplete(frame, context: context)
        case .ping:
            guard frame.fin else { return }
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            awaitingPong = false
        case .connectionClose:
            // The client's answer to our close, or its own close: either way, echo it once and go.
            if connection.closeReason == nil {
                var data = frame.unmaskedData
                let code = data.readWebSocketErrorCode() ?? .normalClosure
                connection.close(.clientClosed)
                var echo = context.channel.allocator.buffer(capacity: 2)
                echo.write(webSocketErrorCode: code)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: echo)))
                    .whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        default:
            break
        }
    }

    /// Hands a complete message on, or closes the socket when fragments grow past the limit.
    private func finishIfComplete(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        guard let message = fragments else { return }
        guard message.readableBytes <= maxMessageSize else {
            fragments = nil
            metrics.socketClosed(.tooLarge)
            close(context: context, code: .messageTooLarge, reason: "The message is larger than \(maxMessageSize) bytes.")
            return
        }
        guard frame.fin else { return }
        fragments = nil
        guard fragmentsAreText else {
            session.rejectBinary()
            return
        }
        if pump.push(message) {
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        }
    }

    private func ping(_ channel: any Channel) {
        guard !heardFrom else {
            heardFrom = false
            awaitingPong = false
            return
        }
        guard !awaitingPong else {
            metrics.socketClosed(.noPong)
            logger.info("no pong within \(Self.pingInterval.nanoseconds / 1_000_000_000) s: closing the socket")
            channel.close(promise: nil)
            return
        }
        awaitingPong = true
        var payload = channel.allocator.buffer(capacity: 8)
        payload.writeInteger(UInt64.random(in: 0...UInt64.max))
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .ping, data: payload), promise: nil)
    }

    /// A protocol-level close by the hub: close frame, then the connection.
    private func close(context: ChannelHandlerContext, code: WebSocketErrorCode, reason: String) {
        connection.close(.clientClosed)
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
            .whenComplete { _ in channel.close(promise: nil) }
    }
}
