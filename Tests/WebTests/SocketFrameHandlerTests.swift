import Foundation
import Hub
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Persistence
import Testing

@testable import Web
import TestSupport

/// The upgraded socket's frame handling on a `NIOAsyncTestingChannel`, whose event loop's clock
/// moves only when the test says so: keep-alive pings 30 s apart checked without waiting a
/// minute, fragments, pings from the client and the close handshake.
@Suite("WebSocket frames on a controlled clock", MachineLoad.shared)
struct SocketFrameHandlerTests {
    /// A socket of `group` on a fresh hub, its handler in the channel's pipeline, the session joined.
    struct Socket {
        let channel: NIOAsyncTestingChannel
        let connection: ClientConnection
        let directory: URL

        static func open(group: UserGroup = .rider, maxMessageSize: Int = 1024) async throws -> Socket {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-frames-\(UUID().uuidString)")
            let store = try SQLiteSnapshotStore(directory: directory.path)
            let hub = Hub()
            let user = User(id: 1, username: "a@example.com", firstName: "A", lastName: "B", group: group, photo: nil, passwordHash: "")
            let channel = NIOAsyncTestingChannel()
            let metrics = HubMetrics()
            let logger = Logger(label: "test")
            let connection = ClientConnection(
                id: ConnectionID(1), user: user, queueLength: 64, closeGrace: .seconds(1), channel: channel, metrics: metrics, logger: logger
            )
            let session = ClientSession(
                hub: hub, store: store, connection: connection, metrics: metrics, maxMessageSize: maxMessageSize,
                locationRate: 10, messageRate: 10, logger: logger
            )
            let pump = InboundPump(session: session, channel: channel, executor: connection.executor) {}
            try await channel.testingEventLoop.executeInContext {
                let handler = SocketFrameHandler(
                    connection: connection, pump: pump, session: session, maxMessageSize: maxMessageSize, metrics: metrics, logger: logger
                )
                try channel.pipeline.syncOperations.addHandler(handler)
            }
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
            return Socket(channel: channel, connection: connection, directory: directory)
        }

        func send(_ opcode: WebSocketOpcode, _ text: String = "", fin: Bool = true) async throws {
            try await channel.writeInbound(WebSocketFrame(fin: fin, opcode: opcode, data: ByteBuffer(string: text)))
        }

        /// The next frame the hub wrote, if one is there now.
        func nextFrame() async throws -> WebSocketFrame? {
            try await channel.readOutbound(as: WebSocketFrame.self)
        }

        func advance(by amount: TimeAmount) async {
            await channel.testingEventLoop.advanceTime(by: amount)
        }

        var isOpen: Bool { get async { (try? await channel.testingEventLoop.executeInContext { channel.isActive }) ?? false } }

        func close() async {
            _ = try? await channel.finish()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    static func closeCode(_ frame: WebSocketFrame?) -> WebSocketErrorCode? {
        guard let frame, frame.opcode == .connectionClose else { return nil }
        var data = frame.unmaskedData
        return data.readWebSocketErrorCode()
    }

    @Test("a silent client is pinged after 30 s and closed 30 s later when no pong comes")
    func silentClientIsPingedThenClosed() async throws {
        let socket = try await Socket.open()
        await socket.advance(by: .milliseconds(29_999))
        #expect(try await socket.nextFrame() == nil)
        await socket.advance(by: .milliseconds(1))
        let ping = try #require(try await socket.nextFrame())
        #expect(ping.opcode == .ping && ping.data.readableBytes == 8)
        await socket.advance(by: .milliseconds(29_999))
        #expect(await socket.isOpen)
        await socket.advance(by: .milliseconds(1))
        #expect(await !socket.isOpen)
        await socket.close()
    }

    @Test("a client that answers pings stays open, and one that keeps sending is not pinged at all")
    func pongsAndTrafficKeepTheSocket() async throws {
        let socket = try await Socket.open()
        for _ in 0..<3 {
            await socket.advance(by: .seconds(30))
            let ping = try #require(try await socket.nextFrame())
            #expect(ping.opcode == .ping)
            try await socket.send(.pong)
        }
        await socket.advance(by: .seconds(30))
        _ = try await socket.nextFrame()  // the fourth ping
        // From now on the client talks every 10 s: no more pings, and it stays open.
        for _ in 0..<9 {
            try await socket.send(.text, #"{"type":"echo.message","data":"hi"}"#)
            await socket.advance(by: .seconds(10))
        }
        var frames: [WebSocketFrame] = []
        while let frame = try await socket.nextFrame() { frames.append(frame) }
        #expect(!frames.contains { $0.opcode == .ping }, "\(frames.map(\.opcode))")
        #expect(frames.filter { $0.opcode == .text }.count == 9)
        #expect(await socket.isOpen)
        await socket.close()
    }

    @Test("a ping from the client gets a pong with its payload")
    func answersPings() async throws {
        let socket = try await Socket.open()
        try await socket.send(.ping, "are you there")
        let pong = try #require(try await socket.nextFrame())
        #expect(pong.opcode == .pong && String(buffer: pong.data) == "are you there")
        await socket.close()
    }

    @Test("a message in fragments is put together; fragments past the limit close with 1009")
    func fragments() async throws {
        let socket = try await Socket.open(maxMessageSize: 64)
        try await socket.send(.text, #"{"type":"echo.message","#, fin: false)
        try await socket.send(.continuation, #""data":"joined"}"#)
        let echo = try #require(try await socket.nextFrame())
        #expect(echo.opcode == .text && String(buffer: echo.data).contains("joined"))
        try await socket.send(.text, String(repeating: "x", count: 40), fin: false)
        try await socket.send(.continuation, String(repeating: "x", count: 40), fin: false)
        #expect(Self.closeCode(try await socket.nextFrame()) == .messageTooLarge)
        await socket.close()
    }

    @Test("a continuation frame with nothing to continue closes with 1002")
    func strayContinuation() async throws {
        let socket = try await Socket.open()
        try await socket.send(.continuation, "orphan")
        #expect(Self.closeCode(try await socket.nextFrame()) == .protocolError)
        await socket.close()
    }

    @Test("the client's close is echoed with its code, then the connection closes")
    func closeHandshake() async throws {
        let socket = try await Socket.open()
        var data = ByteBuffer()
        data.write(webSocketErrorCode: .goingAway)
        try await socket.channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
        #expect(Self.closeCode(try await socket.nextFrame()) == .goingAway)
        await socket.channel.testingEventLoop.run()
        #expect(await !socket.isOpen)
        #expect(socket.connection.closeReason == .clientClosed)
        await socket.close()
    }
}
