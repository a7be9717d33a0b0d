import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A TCP connection to the hub that writes raw bytes, as slowly as a test likes, and collects
/// every byte the hub sends: HTTP spoken the way no client library would (slow loris heads,
/// trickled bodies, silent keep-alive connections).
final class RawHTTPConnection: Sendable {
    /// Status, lower-cased header names and body of one response.
    struct Response: Sendable {
        let status: Int
        let headers: [String: String]
        let body: String
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

    static func open(port: Int) async throws -> RawHTTPConnection {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socket(SocketOptionLevel(IPPROTO_TCP), TCP_NODELAY), value: 1)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) } }
            .connect(host: "127.0.0.1", port: port).get()
        return RawHTTPConnection(channel: channel, collector: collector)
    }

    /// One request on a fresh connection, its response, and the connection closed.
    static func exchange(port: Int, _ request: String) async throws -> Response {
        let connection = try await open(port: port)
        defer { connection.close() }
        try await connection.write(request)
        guard let response = try await connection.nextResponse() else { throw ChannelError.eof }
        return response
    }

    /// Writes `text` at once; fails once the hub has closed the connection.
    func write(_ text: String) async throws {
        try await write(Array(text.utf8))
    }

    func write(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    /// Writes `text` one byte every `interval` until it is all sent or the hub closed the
    /// connection; returns how many bytes were sent.
    @discardableResult
    func drip(_ text: String, every interval: Duration) async -> Int {
        var sent = 0
        for byte in text.utf8 {
            guard !isClosed, (try? await channel.writeAndFlush(channel.allocator.buffer(bytes: [byte]))) != nil else { break }
            sent += 1
            try? await Task.sleep(for: interval)
        }
        return sent
    }

    var isClosed: Bool { collector.closed.withLock { $0 } }

    /// Every byte received and not yet taken by `nextResponse`.
    var unread: String { collector.received.withLock { String(decoding: $0, as: UTF8.self) } }

    /// Whether the hub closed the connection within `timeout`.
    func closedByHub(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isClosed { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return isClosed
    }

    /// The next complete response (its body sized by `content-length`); nil when the connection
    /// ended or none came within `timeout`.
    func nextResponse(timeout: Duration = .seconds(20)) async throws -> Response? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let closed = isClosed
            if let response = takeResponse() { return response }
            if closed { return nil }
            try await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }

    private func takeResponse() -> Response? {
        collector.received.withLock { bytes in
            guard let end = bytes.indices.dropLast(3).first(where: { bytes[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) }) else {
                return nil
            }
            let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
            guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else { return nil }
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            guard bytes.count >= end + 4 + length else { return nil }
            let body = String(decoding: bytes[(end + 4)..<(end + 4 + length)], as: UTF8.self)
            bytes.removeFirst(end + 4 + length)
            return Response(status: status, headers: headers, body: body)
        }
    }

    func close() {
        channel.close(promise: nil)
    }
}
