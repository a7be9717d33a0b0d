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
        typealias OutboundOut = ByteBuffer

        /// Written as soon as the connection is up, from the event loop: a busy test process
        /// cannot delay it past a short head timeout.
        let greeting: [UInt8]
        /// Close as soon as one whole response is in, from the event loop: a busy test process
        /// cannot keep the connection open past a short keep-alive timeout.
        let closeAfterResponse: Bool
        let received = Mutex<[UInt8]>([])
        let closed = Mutex(false)

        init(greeting: [UInt8], closeAfterResponse: Bool) {
            self.greeting = greeting
            self.closeAfterResponse = closeAfterResponse
        }

        func channelActive(context: ChannelHandlerContext) {
            if !greeting.isEmpty {
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: greeting)), promise: nil)
            }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            let complete = received.withLock { bytes in
                bytes.append(contentsOf: buffer.readableBytesView)
                return RawHTTPConnection.responseSize(bytes) != nil
            }
            if closeAfterResponse, complete { context.close(promise: nil) }
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

    /// Connects and writes `greeting` at once.
    static func open(port: Int, sending greeting: [UInt8] = [], closeAfterResponse: Bool = false) async throws -> RawHTTPConnection {
        let collector = Collector(greeting: greeting, closeAfterResponse: closeAfterResponse)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socket(SocketOptionLevel(IPPROTO_TCP), TCP_NODELAY), value: 1)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) } }
            .connect(host: "127.0.0.1", port: port).get()
        return RawHTTPConnection(channel: channel, collector: collector)
    }

    struct NoResponse: Error, CustomStringConvertible {
        let description: String
    }

    /// One request on a fresh connection, its response, and the connection closed.
    static func exchange(port: Int, _ request: String) async throws -> Response {
        let connection = try await open(port: port, sending: Array(request.utf8), closeAfterResponse: true)
        defer { connection.close() }
        guard let response = try await connection.nextResponse(timeout: .seconds(60)) else {
            throw NoResponse(description: connection.isClosed ? "the hub closed the connection without a response" : "no response in 60 s")
        }
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

    /// The status, headers, head size and body size of the response `bytes` start with, once
    /// it is all there.
    private static func responseSize(_ bytes: [UInt8]) -> (status: Int, headers: [String: String], head: Int, body: Int)? {
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
        return (status, headers, end + 4, length)
    }

    private func takeResponse() -> Response? {
        collector.received.withLock { bytes in
            guard let size = Self.responseSize(bytes) else { return nil }
            let body = String(decoding: bytes[size.head..<(size.head + size.body)], as: UTF8.self)
            bytes.removeFirst(size.head + size.body)
            return Response(status: size.status, headers: size.headers, body: body)
        }
    }

    func close() {
        channel.close(promise: nil)
    }
}
