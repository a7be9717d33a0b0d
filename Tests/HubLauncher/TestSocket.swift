import Foundation
import NIOCore
import NIOWebSocket
import SocketClient
import Synchronization
import Testing

/// A WebSocket for tests, on the project's one client (`SocketClient.WebSocketClient`, the load
/// generator's): text messages it receives are queued, and `receive` waits for the next one with
/// a time-out, so a missing message fails instead of hanging.
///
/// With `rawFrames`, it sends and reads frames as they are instead (`sendFrame`, `nextFrame`), so
/// tests can send what no well-behaved client would: text that is not UTF-8, fragments, frames
/// over the size limit, wrong opcodes, no mask.
public final class TestSocket: Sendable {
    public typealias CloseFrame = WebSocketClient.CloseFrame

    private let client: WebSocketClient
    private let inbox: Inbox<Received>
    private let sendBinary: Bool
    /// The server's close frame, once one came.
    private let serverClose: ServerClose

    /// The server did not upgrade the connection (or it could not be made).
    public struct Refused: Error, CustomStringConvertible {
        public let reason: WebSocketClient.OpenError
        public var description: String { "the WebSocket was refused: \(reason)" }
    }
    public struct TimedOut: Error, CustomStringConvertible {
        public let description = "no message arrived in time"
        public init() {}
    }
    public struct Closed: Error, CustomStringConvertible {
        public let description = "the socket closed before the expected message arrived"
    }

    /// A frame from the server, in raw-frame mode.
    public struct Frame: Sendable {
        public let opcode: UInt8
        public let payload: [UInt8]

        public var text: String? { opcode == 0x1 ? String(decoding: payload, as: UTF8.self) : nil }
        /// The close code of a close frame.
        public var closeCode: Int? { opcode == 0x8 && payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : nil }
    }

    private enum Received: Sendable {
        case text(String)
        case frame(Frame)
    }

    /// Generous: all suites run at once on two cores next to PostgreSQL, so a busy machine
    /// may delay a message by seconds; a missing message still fails instead of hanging.
    public static let defaultTimeout: Duration = .seconds(20)

    private init(client: WebSocketClient, inbox: Inbox<Received>, sendBinary: Bool, serverClose: ServerClose) {
        self.client = client
        self.inbox = inbox
        self.sendBinary = sendBinary
        self.serverClose = serverClose
    }

    /// Opens `/taxi/?token=`, or throws `Refused` when the server does not upgrade. With
    /// `readingPaused`, nothing is read until `resumeReading()`; with `readDelay`, not for that
    /// long. With `sendBinary`, `send` sends binary frames; with `rawFrames`, see the type.
    public static func connect(
        port: Int, token: String?, readDelay: Duration? = nil, readingPaused: Bool = false, sendBinary: Bool = false,
        rawFrames: Bool = false
    ) async throws -> TestSocket {
        let inbox = Inbox<Received>()
        let serverClose = ServerClose()
        var options = WebSocketClient.Options()
        options.maxFrameSize = 1 << 22
        options.readingPaused = readingPaused || readDelay != nil
        var events = WebSocketClient.Events(
            text: { inbox.push(.text(String(buffer: $0))) },
            closed: { inbox.finish() },
            closeFrame: { serverClose.record($0) }
        )
        if rawFrames {
            events.frame = { inbox.push(.frame(Frame(opcode: UInt8(webSocketOpcode: $0.opcode), payload: Array($0.data.readableBytesView)))) }
        }
        let client: WebSocketClient
        do {
            client = try await WebSocketClient.open(
                port: port, path: "/taxi/" + (token.map { "?token=\($0)" } ?? ""), options: options, events: events
            )
        } catch let error as WebSocketClient.OpenError {
            throw Refused(reason: error)
        }
        if let readDelay {
            Task {
                try? await Task.sleep(for: readDelay)
                client.resumeReading()
            }
        }
        return TestSocket(client: client, inbox: inbox, sendBinary: sendBinary, serverClose: serverClose)
    }

    /// Starts reading a socket connected with `readingPaused`.
    public func resumeReading() {
        client.resumeReading()
    }

    public func send(_ text: String) {
        if sendBinary {
            client.send(opcode: .binary, text.utf8)
        } else {
            client.send(text)
        }
    }

    public func send(_ object: [String: Any]) {
        send(jsonText(object))
    }

    /// The next text frame; throws `TimedOut` when none comes within `timeout`.
    public func receive(timeout: Duration = TestSocket.defaultTimeout) async throws -> String {
        while true {
            switch try await inbox.next(timeout: timeout) {
            case .text(let text): return text
            case .frame(let frame): if let text = frame.text { return text }
            case nil: throw Closed()
            }
        }
    }

    public func receiveJSON(timeout: Duration = TestSocket.defaultTimeout) async throws -> [String: Any] {
        try parseJSONObject(try await receive(timeout: timeout))
    }

    /// True when nothing arrives for `duration`.
    public func staysQuiet(for duration: Duration = .milliseconds(300)) async -> Bool {
        (try? await inbox.next(timeout: duration)) == nil
    }

    // MARK: Raw frames

    /// Sends one frame as it is, masked as a client must unless `masked` is false (`fin: false`
    /// starts or continues a fragmented message).
    public func sendFrame(opcode: UInt8, _ payload: [UInt8], fin: Bool = true, masked: Bool = true) {
        var data = ByteBuffer()
        data.writeBytes(payload)
        client.send(WebSocketFrame(fin: fin, opcode: WebSocketOpcode(encodedWebSocketOpcode: opcode)!, maskKey: masked ? .random() : nil, data: data))
    }

    /// The next frame from the server (raw-frame mode); nil when the connection ended or none came
    /// in `timeout`.
    public func nextFrame(timeout: Duration = TestSocket.defaultTimeout) async throws -> Frame? {
        while true {
            switch try? await inbox.next(timeout: timeout) {
            case .frame(let frame): return frame
            case .text: continue
            case nil: return nil
            }
        }
    }

    public var isClosed: Bool { client.isClosed }

    // MARK: Closing

    /// Closes from the client side and returns the server's close frame, if any.
    @discardableResult
    public func close() async -> CloseFrame? {
        await client.close(timeout: Self.timeAmount(Self.defaultTimeout))
        return serverClose.frame
    }

    /// Waits for the server to close the socket and returns its close frame; nil after `timeout`
    /// (the socket is then closed), so a close handshake that never completes fails the test that
    /// expects it instead of hanging the run.
    public func closedByServer(timeout: Duration = TestSocket.defaultTimeout) async -> CloseFrame? {
        await client.closed(timeout: Self.timeAmount(timeout))
        return serverClose.frame
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}

/// The first close frame the server sent.
private final class ServerClose: Sendable {
    private let first = Mutex<TestSocket.CloseFrame?>(nil)

    public func record(_ frame: TestSocket.CloseFrame) {
        first.withLock { $0 = $0 ?? frame }
    }

    public var frame: TestSocket.CloseFrame? { first.withLock { $0 } }
}

/// What arrived but was not read yet, and the reader waiting for the next one. Pushed to on the
/// connection's event loop, in order.
public final class Inbox<Element: Sendable>: Sendable {
    private struct State {
        public var buffer: [Element] = []
        public var head = 0
        public var waiter: (id: Int, continuation: CheckedContinuation<Element?, any Error>)?
        public var waiterCount = 0
        public var isFinished = false
    }

    private let state = Mutex(State())

    public func push(_ element: Element) {
        let waiter = state.withLock { state -> CheckedContinuation<Element?, any Error>? in
            guard let waiter = state.waiter else {
                state.buffer.append(element)
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume(returning: element)
    }

    /// No more elements will come: a waiting reader gets nil, and so does every later one once
    /// the buffer is read.
    public func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Element?, any Error>? in
            state.isFinished = true
            defer { state.waiter = nil }
            return state.waiter?.continuation
        }
        waiter?.resume(returning: nil)
    }

    /// The next element; nil once finished and read; throws `TimedOut` after `timeout`.
    public func next(timeout: Duration) async throws -> Element? {
        try await withCheckedThrowingContinuation { continuation in
            let (ready, id) = state.withLock { state -> (Result<Element?, any Error>?, Int) in
                if state.head < state.buffer.count {
                    defer {
                        state.head += 1
                        if state.head == state.buffer.count {
                            state.buffer.removeAll(keepingCapacity: true)
                            state.head = 0
                        }
                    }
                    return (.success(state.buffer[state.head]), 0)
                }
                if state.isFinished { return (.success(nil), 0) }
                state.waiterCount += 1
                state.waiter = (state.waiterCount, continuation)
                return (nil, state.waiterCount)
            }
            if let ready {
                continuation.resume(with: ready)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                self.expire(id)
            }
        }
    }

    private func expire(_ id: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Element?, any Error>? in
            guard let waiter = state.waiter, waiter.id == id else { return nil }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume(throwing: TestSocket.TimedOut())
    }
}
