import NIOCore
import NIOPosix
import NIOWebSocket

/// A lean WebSocket client on plain SwiftNIO: an optional local source address (so connections
/// can spread over 127.0.0.x when one address runs out of ephemeral ports), a hand-written
/// upgrade request that tells a refused handshake's HTTP status, and text frames handed to a
/// callback on the connection's event loop without any async machinery, so thousands of idle
/// connections stay small.
final class WebSocketClient: Sendable {
    /// Why a WebSocket did not open.
    enum OpenError: Error, CustomStringConvertible {
        /// The server answered the upgrade request with this HTTP status instead of 101.
        case refused(status: Int)
        /// The TCP connection failed or closed before the handshake ended.
        case failed(String)

        var description: String {
            switch self {
            case .refused(let status): "HTTP \(status)"
            case .failed(let reason): reason
            }
        }

        /// A short label for counting failures: `http_503`, `connect`.
        var label: String {
            switch self {
            case .refused(let status): "http_\(status)"
            case .failed: "connect"
            }
        }
    }

    /// Callbacks of one connection, called on its event loop.
    struct Events: Sendable {
        /// A complete text message.
        var text: @Sendable (ByteBuffer) -> Void = { _ in }
        /// The connection closed, whoever closed it.
        var closed: @Sendable () -> Void = {}
    }

    /// Largest message accepted from the server.
    static let maxFrameSize = 1 << 20

    let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Connects to `server`, upgrades `path` to a WebSocket, and returns once the server said 101.
    static func open(
        server: SocketAddress, host: String, path: String, source: SocketAddress?, group: any EventLoopGroup, events: Events
    ) async throws -> WebSocketClient {
        let loop = group.next()
        let upgraded = loop.makePromise(of: Void.self)
        var bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UpgradeHandler(host: host, path: path, upgraded: upgraded, events: events)
                    )
                }
            }
        if let source { bootstrap = bootstrap.bind(to: source) }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(to: server).get()
        } catch {
            upgraded.fail(OpenError.failed("\(error)"))
            throw OpenError.failed("\(error)")
        }
        try await upgraded.futureResult.get()
        return WebSocketClient(channel: channel)
    }

    /// Sends one masked text frame; a write to a closed connection is dropped.
    func send(_ text: String) {
        var buffer = channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer), promise: nil)
    }

    /// Sends a close frame (1000) and waits up to `timeout` for the server to close; then closes
    /// the socket anyway.
    func close(timeout: TimeAmount = .seconds(2)) async {
        var reason = channel.allocator.buffer(capacity: 2)
        reason.write(webSocketErrorCode: .normalClosure)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: reason), promise: nil)
        let channel = channel
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        try? await channel.closeFuture.get()
        deadline.cancel()
    }
}

/// Writes the upgrade request, reads the response head, and on 101 replaces itself with the
/// WebSocket frame codec and a `FrameHandler`; on anything else, fails the open with the status.
private final class UpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: String
    private let upgraded: EventLoopPromise<Void>
    private let events: WebSocketClient.Events
    private var head: ByteBuffer?
    private var finished = false

    init(host: String, path: String, upgraded: EventLoopPromise<Void>, events: WebSocketClient.Events) {
        request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(NIOWebSocketClientUpgrader.randomRequestKey())\r\nSec-WebSocket-Version: 13\r\n\r\n"
        self.upgraded = upgraded
        self.events = events
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if head == nil { head = context.channel.allocator.buffer(capacity: 256) }
        head!.writeBuffer(&bytes)
        guard let end = head!.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else {
            if head!.readableBytes > 16 * 1024 { fail(context: context, .failed("response head too long")) }
            return
        }
        let headLength = end.upperBound - head!.readerIndex
        let text = head!.readString(length: headLength) ?? ""
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        guard status == 101 else {
            fail(context: context, .refused(status: status))
            return
        }
        do {
            try context.pipeline.syncOperations.addHandlers(
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: WebSocketClient.maxFrameSize)),
                WebSocketFrameEncoder(),
                FrameHandler(events: events)
            )
        } catch {
            fail(context: context, .failed("\(error)"))
            return
        }
        finished = true
        upgraded.succeed()
        let rest = head!
        head = nil
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished {
            finished = true
            upgraded.fail(WebSocketClient.OpenError.failed("closed during the handshake"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, .failed("\(error)"))
    }

    private func fail(context: ChannelHandlerContext, _ error: WebSocketClient.OpenError) {
        guard !finished else { return }
        finished = true
        upgraded.fail(error)
        context.close(promise: nil)
    }
}

/// An open WebSocket: text messages (reassembled from fragments) go to the callback, pings are
/// answered, and a close from the server is answered and ends the connection.
private final class FrameHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let events: WebSocketClient.Events
    private var fragments: ByteBuffer?
    private var closing = false

    init(events: WebSocketClient.Events) {
        self.events = events
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            if frame.fin {
                events.text(frame.unmaskedData)
            } else {
                fragments = frame.unmaskedData
            }
        case .continuation:
            guard var partial = fragments else { return }
            var data = frame.unmaskedData
            partial.writeBuffer(&data)
            if frame.fin {
                fragments = nil
                events.text(partial)
            } else {
                fragments = partial
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            guard !closing else {
                context.close(promise: nil)
                return
            }
            closing = true
            let reply = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
            context.close(promise: nil)
        default:
            break
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if unwrapOutboundIn(data).opcode == .connectionClose { closing = true }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.closed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
