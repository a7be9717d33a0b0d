import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A WebSocket client that writes frames byte by byte, so tests can send what no well-behaved
/// client library would: text that is not UTF-8, fragments, frames over the size limit. It
/// reads the server's frames from the raw bytes too.
final class RawWebSocket: Sendable {
    struct HandshakeFailed: Error, CustomStringConvertible {
        let description: String
    }

    /// A frame from the server.
    struct Frame: Sendable {
        let opcode: UInt8
        let payload: [UInt8]

        var text: String? { opcode == 0x1 ? String(decoding: payload, as: UTF8.self) : nil }
        /// The close code of a close frame.
        var closeCode: Int? { opcode == 0x8 && payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : nil }
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer

        let received = Mutex<[UInt8]>([])
        let closed = Mutex(false)

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.withLock { $0.append(contentsOf: buffer.readableBytesView) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            closed.withLock { $0 = true }
        }
    }

    private let channel: any Channel
    private let collector: Collector

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// Connects to `/taxi/?token=` and completes the handshake.
    static func connect(port: Int, token: String) async throws -> RawWebSocket {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) } }
            .connect(host: "127.0.0.1", port: port).get()
        let socket = RawWebSocket(channel: channel, collector: collector)
        socket.write(
            Array(
                ("GET /taxi/?token=\(token) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8
            )
        )
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let head: String? = collector.received.withLock { bytes in
                guard let end = bytes.indices.dropLast(3).first(where: { bytes[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) }) else {
                    return nil
                }
                let text = String(decoding: bytes[..<end], as: UTF8.self)
                bytes.removeFirst(end + 4)
                return text
            }
            if let head {
                guard head.hasPrefix("HTTP/1.1 101") else { throw HandshakeFailed(description: head) }
                return socket
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw HandshakeFailed(description: "no answer to the handshake")
    }

    func write(_ bytes: [UInt8]) {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Sends one frame, masked as a client must (`fin: false` starts or continues a fragmented message).
    func send(opcode: UInt8, _ payload: [UInt8], fin: Bool = true) {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        case ..<65536: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default: frame += [0x80 | 127] + (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        write(frame)
    }

    func sendText(_ text: String) {
        send(opcode: 0x1, Array(text.utf8))
    }

    /// The next frame from the server; nil when the connection ended or none came in `timeout`.
    func next(timeout: Duration = .seconds(20)) async throws -> Frame? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let frame = takeFrame() { return frame }
            if collector.closed.withLock({ $0 }) { return takeFrame() }
            try await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }

    /// Parses one complete unmasked server frame off the collected bytes, if there is one.
    private func takeFrame() -> Frame? {
        collector.received.withLock { bytes in
            guard bytes.count >= 2 else { return nil }
            var length = Int(bytes[1] & 0x7F)
            var offset = 2
            if length == 126 {
                guard bytes.count >= 4 else { return nil }
                length = Int(bytes[2]) << 8 | Int(bytes[3])
                offset = 4
            } else if length == 127 {
                guard bytes.count >= 10 else { return nil }
                length = (2..<10).reduce(0) { $0 << 8 | Int(bytes[$1]) }
                offset = 10
            }
            guard bytes.count >= offset + length else { return nil }
            let frame = Frame(opcode: bytes[0] & 0x0F, payload: Array(bytes[offset..<offset + length]))
            bytes.removeFirst(offset + length)
            return frame
        }
    }

    var isClosed: Bool { collector.closed.withLock { $0 } }

    func close() async {
        try? await channel.close()
    }
}
