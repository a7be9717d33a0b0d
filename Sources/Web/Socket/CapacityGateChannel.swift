import HummingbirdCore
import Logging
import NIOCore

/// The hub's child channel with a gate in front that answers an upgrade request with HTTP 503
/// while the hub refuses sockets (at its connection cap, loading its state, shutting down),
/// before any upgrade work or token check.
struct CapacityGateChannel: ServerChildChannel {
    typealias Value = HubSocketChannel.Value

    let inner: HubSocketChannel
    let connections: ConnectionRegistry
    let metrics: HubMetrics

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(UpgradeCapacityGate(connections: connections, metrics: metrics), position: .first)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Reads the head of a connection's first request. While sockets are refused, an upgrade
/// request gets a 503 saying why and the connection closes; anything else passes through
/// untouched and the gate steps out.
final class UpgradeCapacityGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Longest request head the gate buffers before it gives up and lets the request through.
    static let maxHeadSize = 16 * 1024
    static func response(refusing reason: String) -> String {
        let body = WireEncoding.encode(["detail": reason])
        return "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n"
            + "retry-after: 1\r\nconnection: close\r\n\r\n" + body
    }

    private let connections: ConnectionRegistry
    private let metrics: HubMetrics
    private var head: ByteBuffer?

    init(connections: ConnectionRegistry, metrics: HubMetrics) {
        self.connections = connections
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if head == nil, connections.refusal == nil {
            passThrough(context: context, bytes)
            return
        }
        if head == nil { head = context.channel.allocator.buffer(capacity: bytes.readableBytes) }
        head!.writeBuffer(&bytes)
        let text = String(buffer: head!)
        guard let end = text.range(of: "\r\n\r\n") else {
            if head!.readableBytes > Self.maxHeadSize { passThrough(context: context, head!) }
            return
        }
        let lines = text[..<end.lowerBound].lowercased().split(separator: "\r\n")
        let isUpgrade = lines.contains { $0.hasPrefix("upgrade:") && $0.contains("websocket") }
        if isUpgrade, let reason = connections.refusal {
            metrics.httpRefused(status: 503)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: Self.response(refusing: reason))), promise: nil)
            context.close(promise: nil)
        } else {
            passThrough(context: context, head!)
        }
    }

    private func passThrough(context: ChannelHandlerContext, _ bytes: ByteBuffer) {
        head = nil
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
