import NIOCore
import NIOPosix
import NIOWebSocket

/// The project's one WebSocket client, on plain SwiftNIO: the load generator's thousands of
/// simulated users, the tests' sockets and the `SnapshotLatency` benchmark's echo load all open
/// theirs here.
///
/// - An optional local source address, so connections can spread over 127.0.0.x when one address
///   runs out of ephemeral ports.
/// - A hand-written upgrade request that tells a refused handshake's HTTP status.
/// - Text messages (fragments joined) handed to a callback on the connection's event loop without
///   any async machinery, so thousands of idle connections stay small.
/// - A raw-frame mode for tests that must see and send what a well-behaved client would not:
///   `Events.frame` receives every frame as it arrived, and `send(_:)` of a `WebSocketFrame` writes
///   any opcode, `fin` bit, reserved bits, payload or mask (none at all included) as it is.
///
/// Pings are answered with pongs, and a close frame from the server is answered and ends the
/// connection, in both modes.
public final class WebSocketClient: Sendable {
    /// Why a WebSocket did not open.
    public enum OpenError: Error, CustomStringConvertible {
        /// The server answered the upgrade request with this HTTP status instead of 101.
        case refused(status: Int)
        /// The TCP connection failed or closed before the handshake ended.
        case failed(String)

        public var description: String {
            switch self {
            case .refused(let status): "HTTP \(status)"
            case .failed(let reason): reason
            }
        }

        /// A short label for counting failures: `http_503`, `connect`.
        public var label: String {
            switch self {
            case .refused(let status): "http_\(status)"
            case .failed: "connect"
            }
        }
    }

    /// The close frame the server sent: its code and its reason, if any.
    public struct CloseFrame: Sendable, Equatable, CustomStringConvertible {
        public let closeCode: WebSocketErrorCode
        public let reason: String?

        public init(closeCode: WebSocketErrorCode, reason: String?) {
            self.closeCode = closeCode
            self.reason = reason
        }

        /// The code and reason of a close frame's payload; 1005 (no status) when it has none.
        init(payload: ByteBuffer) {
            var payload = payload
            closeCode = payload.readWebSocketErrorCode() ?? .unknown(1005)
            reason = payload.readableBytes > 0 ? payload.readString(length: payload.readableBytes) : nil
        }

        public var description: String { "\(closeCode)\(reason.map { " (\($0))" } ?? "")" }
    }

    /// Callbacks of one connection, called on its event loop.
    public struct Events: Sendable {
        /// A complete text message (unless `frame` is set).
        public var text: @Sendable (ByteBuffer) -> Void
        /// The connection closed, whoever closed it.
        public var closed: @Sendable () -> Void
        /// The server's close frame, before the connection closes.
        public var closeFrame: (@Sendable (CloseFrame) -> Void)?
        /// Raw-frame mode: when set, every frame from the server comes here unmasked but otherwise
        /// as it arrived (fragments not joined, control frames included) and `text` gets nothing.
        public var frame: (@Sendable (WebSocketFrame) -> Void)?

        public init(
            text: @escaping @Sendable (ByteBuffer) -> Void = { _ in }, closed: @escaping @Sendable () -> Void = {},
            closeFrame: (@Sendable (CloseFrame) -> Void)? = nil, frame: (@Sendable (WebSocketFrame) -> Void)? = nil
        ) {
            self.text = text
            self.closed = closed
            self.closeFrame = closeFrame
            self.frame = frame
        }
    }

    /// How the connection reads and what it accepts.
    public struct Options: Sendable {
        /// Largest frame accepted from the server; a larger one fails the connection.
        public var maxFrameSize = 1 << 20
        /// Read nothing after the handshake until `resumeReading()`: the server's frames pile up
        /// in the kernel's buffers (a slow client, for tests of the hub's back-pressure).
        public var readingPaused = false
        /// Where the connection comes from; nil lets the kernel choose.
        public var source: SocketAddress?
        public var connectTimeout: TimeAmount = .seconds(10)

        public init() {}
    }

    public let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Connects to `server`, upgrades `path` to a WebSocket (`host` is the `Host` header), and
    /// returns once the server said 101.
    public static func open(
        server: SocketAddress, host: String, path: String, options: Options = Options(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, events: Events
    ) async throws -> WebSocketClient {
        let loop = group.next()
        let upgraded = loop.makePromise(of: Void.self)
        var bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(options.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UpgradeHandler(host: host, path: path, options: options, upgraded: upgraded, events: events)
                    )
                }
            }
        if let source = options.source { bootstrap = bootstrap.bind(to: source) }
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

    /// Connects to `host:port` (resolved first) and upgrades `path`.
    public static func open(
        host: String = "127.0.0.1", port: Int, path: String, options: Options = Options(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, events: Events
    ) async throws -> WebSocketClient {
        let server: SocketAddress
        do {
            server = try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw OpenError.failed("\(error)")
        }
        return try await open(server: server, host: "\(host):\(port)", path: path, options: options, group: group, events: events)
    }

    /// Sends one masked text frame; a write to a closed connection is dropped.
    public func send(_ text: String) {
        var buffer = channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        send(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer))
    }

    /// Sends one masked frame of `opcode` with `payload` as it is (`fin: false` starts or continues
    /// a fragmented message); a write to a closed connection is dropped.
    public func send(opcode: WebSocketOpcode, _ payload: some Sequence<UInt8>, fin: Bool = true) {
        var buffer = channel.allocator.buffer(capacity: 0)
        buffer.writeBytes(payload)
        send(WebSocketFrame(fin: fin, opcode: opcode, maskKey: .random(), data: buffer))
    }

    /// Sends `frame` exactly as given (raw-frame mode: a frame without a mask key goes unmasked,
    /// which a server must refuse); a write to a closed connection is dropped.
    public func send(_ frame: WebSocketFrame) {
        channel.writeAndFlush(frame, promise: nil)
    }

    /// Starts reading a connection opened with `readingPaused`.
    public func resumeReading() {
        let channel = channel
        channel.eventLoop.execute {
            try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            channel.read()
        }
    }

    /// Whether the connection has closed.
    public var isClosed: Bool { !channel.isActive }

    /// Sends a close frame (1000) and waits up to `timeout` for the server to close; then closes
    /// the socket anyway.
    public func close(timeout: TimeAmount = .seconds(2)) async {
        var reason = channel.allocator.buffer(capacity: 2)
        reason.write(webSocketErrorCode: .normalClosure)
        send(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: reason))
        await closed(timeout: timeout)
    }

    /// Waits up to `timeout` for the connection to close, then closes the socket anyway.
    public func closed(timeout: TimeAmount) async {
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
    private let options: WebSocketClient.Options
    private let upgraded: EventLoopPromise<Void>
    private let events: WebSocketClient.Events
    private var head: ByteBuffer?
    private var finished = false

    init(host: String, path: String, options: WebSocketClient.Options, upgraded: EventLoopPromise<Void>, events: WebSocketClient.Events) {
        request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(NIOWebSocketClientUpgrader.randomRequestKey())\r\nSec-WebSocket-Version: 13\r\n\r\n"
        self.options = options
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
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: options.maxFrameSize)),
                WebSocketFrameEncoder(),
                FrameHandler(events: events)
            )
            if options.readingPaused { try context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false) }
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

/// An open WebSocket: text messages (reassembled from fragments) go to the callback, or every
/// frame in raw-frame mode; pings are answered, and a close from the server is answered and ends
/// the connection.
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
        if let raw = events.frame {
            raw(WebSocketFrame(fin: frame.fin, rsv1: frame.rsv1, rsv2: frame.rsv2, rsv3: frame.rsv3, opcode: frame.opcode, data: frame.unmaskedData))
        }
        switch frame.opcode {
        case .text where events.frame == nil:
            if frame.fin {
                events.text(frame.unmaskedData)
            } else {
                fragments = frame.unmaskedData
            }
        case .continuation where events.frame == nil:
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
            events.closeFrame?(WebSocketClient.CloseFrame(payload: frame.unmaskedData))
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
