import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import Web
import TestSupport

/// The HTTP/1 deadlines of `RequestTimeoutHandler` on an `EmbeddedChannel`, whose event loop's
/// clock moves only when the test says so: each deadline is checked to the millisecond, without
/// waiting for it. (`TimeoutTests` keeps a few of the same cases over real sockets.)
@Suite("Request timeouts on a controlled clock", MachineLoad.shared)
struct RequestTimeoutHandlerTests {
    static let timeouts = RequestTimeouts(head: .milliseconds(1500), body: .milliseconds(1500), keepAlive: .seconds(3))

    /// A connected channel with the handler, its clock at the accept.
    static func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: RequestTimeoutHandler(timeouts: timeouts, metrics: HubMetrics()))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    static func head(_ uri: String = "/api/client/", contentLength: Int? = nil) -> HTTPServerRequestPart {
        var head = HTTPRequestHead(version: .http1_1, method: contentLength == nil ? .GET : .POST, uri: uri)
        if let contentLength { head.headers.add(name: "content-length", value: String(contentLength)) }
        return .head(head)
    }

    /// Reads a whole request in one read cycle.
    static func readRequest(_ channel: EmbeddedChannel) throws {
        try channel.writeInbound(head())
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        channel.pipeline.fireChannelReadComplete()
    }

    /// The hub's answer to the request in flight.
    static func respond(_ channel: EmbeddedChannel) throws {
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        while try channel.readOutbound(as: HTTPServerResponsePart.self) != nil {}
    }

    /// The `408` the handler wrote: its status and `detail`, or nil when it wrote nothing.
    static func timeoutResponse(_ channel: EmbeddedChannel) throws -> (status: HTTPResponseStatus, connection: String?, body: String)? {
        guard case .head(let head) = try channel.readOutbound(as: HTTPServerResponsePart.self) else { return nil }
        guard case .body(.byteBuffer(let body)) = try channel.readOutbound(as: HTTPServerResponsePart.self) else { return nil }
        guard case .end = try channel.readOutbound(as: HTTPServerResponsePart.self) else { return nil }
        return (head.status, head.headers.first(name: "connection"), String(buffer: body))
    }

    @Test("a head begun but not finished gets 408 at the head timeout from the accept, not before")
    func slowHead() throws {
        let channel = try Self.channel()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
        channel.pipeline.fireChannelReadComplete()  // bytes came, no whole part yet
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1399))
        #expect(channel.isActive)
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        let response = try #require(try Self.timeoutResponse(channel))
        #expect(response.status == .requestTimeout && response.connection == "close")
        #expect(response.body.contains("request head was not received within 1.5 seconds"), "\(response.body)")
        #expect(!channel.isActive)
    }

    @Test("a connection that never sends a byte is closed at the head timeout without a response")
    func silentConnection() throws {
        let channel = try Self.channel()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1499))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
        #expect(!channel.isActive)
    }

    @Test("a body not finished within the body timeout after its head gets 408")
    func slowBody() throws {
        let channel = try Self.channel()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(500))
        try channel.writeInbound(Self.head(contentLength: 100))
        channel.pipeline.fireChannelReadComplete()
        // Trickled bytes do not restart the clock: only the whole body counts.
        for _ in 0..<14 {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
            try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "x")))
            channel.pipeline.fireChannelReadComplete()
        }
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(99))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        let response = try #require(try Self.timeoutResponse(channel))
        #expect(response.status == .requestTimeout)
        #expect(response.body.contains("request body was not received within 1.5 seconds"), "\(response.body)")
        #expect(!channel.isActive)
    }

    @Test("no timer runs while the hub works on a request, however long")
    func slowHandler() throws {
        let channel = try Self.channel()
        try Self.readRequest(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive)
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
        try Self.respond(channel)
        // From the answer on, the keep-alive clock runs.
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test("keep-alive: pauses longer than the head timeout between requests are fine; the next head has its own clock")
    func keepAlive() throws {
        let channel = try Self.channel()
        for _ in 0..<3 {
            try Self.readRequest(channel)
            try Self.respond(channel)
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(2500))  // > head, < keep-alive
            #expect(channel.isActive)
        }
        // A next head begins: from its first byte it has the head timeout, not the rest of the idle wait.
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1499))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        let response = try #require(try Self.timeoutResponse(channel))
        #expect(response.status == .requestTimeout)
        #expect(!channel.isActive)
    }

    @Test("an idle keep-alive connection is closed at the keep-alive timeout without a response")
    func idleKeepAlive() throws {
        let channel = try Self.channel()
        try Self.readRequest(channel)
        try Self.respond(channel)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
        #expect(!channel.isActive)
    }

    @Test("once removed (the WebSocket upgrade), the handler closes nothing")
    func removedOnUpgrade() throws {
        let channel = try Self.channel()
        try Self.readRequest(channel)
        try Self.respond(channel)
        let handler = try channel.pipeline.syncOperations.handler(type: RequestTimeoutHandler.self)
        try channel.pipeline.syncOperations.removeHandler(handler).wait()
        channel.embeddedEventLoop.advanceTime(by: .seconds(3600))
        #expect(channel.isActive)
    }
}
