import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import Testing

/// A real WebSocket client for tests: text frames it receives are queued, and `receive`
/// waits for the next one with a time-out, so a missing message fails instead of hanging.
final class TestSocket: Sendable {
    private let inbox: Inbox
    private let outgoing: AsyncStream<String>.Continuation
    private let session: Task<WebSocketCloseFrame?, any Error>
    /// Opens the reading side of a socket connected with `readingPaused`.
    private let readGate: AsyncStream<Void>.Continuation

    struct Refused: Error {}
    struct TimedOut: Error, CustomStringConvertible {
        let description = "no message arrived in time"
    }
    struct Closed: Error, CustomStringConvertible {
        let description = "the socket closed before the expected message arrived"
    }

    /// Generous: all suites run at once on two cores next to PostgreSQL, so a busy machine
    /// may delay a message by seconds; a missing message still fails instead of hanging.
    static let defaultTimeout: Duration = .seconds(20)

    private init(
        inbox: Inbox, outgoing: AsyncStream<String>.Continuation, session: Task<WebSocketCloseFrame?, any Error>,
        readGate: AsyncStream<Void>.Continuation
    ) {
        self.inbox = inbox
        self.outgoing = outgoing
        self.session = session
        self.readGate = readGate
    }

    /// Opens `/taxi/?token=`, or throws `Refused` when the server does not upgrade. With
    /// `readingPaused`, nothing is read until `resumeReading()`; with `readDelay`, not for that long.
    static func connect(
        port: Int, token: String?, readDelay: Duration? = nil, readingPaused: Bool = false, sendBinary: Bool = false
    ) async throws -> TestSocket {
        let query = token.map { "?token=\($0)" } ?? ""
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let (gate, gateContinuation) = AsyncStream.makeStream(of: Void.self)
        let inbox = Inbox()
        let session = Task {
            defer { Task { await inbox.finish() } }
            return try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(port)/taxi/\(query)",
                configuration: .init(maxFrameSize: 1 << 22),
                logger: {
                    var logger = Logger(label: "test-socket")
                    logger.logLevel = ProcessInfo.processInfo.environment["TAXI_HUB_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
                    return logger
                }()
            ) { inbound, outbound, _ in
                await inbox.opened()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // A server that closed the socket fails our writes; its close frame is what counts,
                        // so write errors end the sending side quietly and reading goes on.
                        do {
                            for await text in stream {
                                try await outbound.write(sendBinary ? .binary(ByteBuffer(string: text)) : .text(text))
                            }
                            try await outbound.close(.normalClosure, reason: nil)
                        } catch {
                            try await Task.sleep(for: .seconds(3600))
                        }
                    }
                    group.addTask {
                        if let readDelay { try await Task.sleep(for: readDelay) }
                        if readingPaused {
                            for await _ in gate { break }
                        }
                        for try await message in inbound.messages(maxSize: 1 << 22) {
                            if case .text(let text) = message { await inbox.push(text) }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        }
        guard await inbox.waitUntilOpen() else { throw Refused() }
        return TestSocket(inbox: inbox, outgoing: continuation, session: session, readGate: gateContinuation)
    }

    /// Starts reading a socket connected with `readingPaused`.
    func resumeReading() {
        readGate.yield()
    }

    func send(_ text: String) {
        outgoing.yield(text)
    }

    func send(_ object: [String: Any]) {
        send(jsonText(object))
    }

    /// The next text frame; throws `TimedOut` when none comes within `timeout`.
    func receive(timeout: Duration = TestSocket.defaultTimeout) async throws -> String {
        guard let text = try await inbox.next(timeout: timeout) else { throw Closed() }
        return text
    }

    func receiveJSON(timeout: Duration = TestSocket.defaultTimeout) async throws -> [String: Any] {
        try parseJSONObject(try await receive(timeout: timeout))
    }

    /// True when nothing arrives for `duration`.
    func staysQuiet(for duration: Duration = .milliseconds(300)) async -> Bool {
        (try? await inbox.next(timeout: duration)) == nil
    }

    /// Closes from the client side and returns the server's close frame, if any.
    @discardableResult
    func close() async -> WebSocketCloseFrame? {
        outgoing.finish()
        return await sessionEnd()
    }

    /// Waits for the server to close the socket and returns its close frame.
    func closedByServer(timeout: Duration = TestSocket.defaultTimeout) async -> WebSocketCloseFrame? {
        await sessionEnd(timeout: timeout)
    }

    /// The session's close frame once it ends; nil after `timeout` (the session is then
    /// cancelled, which closes the socket), so a close handshake that never completes fails the
    /// test that expects it instead of hanging the run.
    private func sessionEnd(timeout: Duration = TestSocket.defaultTimeout) async -> WebSocketCloseFrame? {
        let session = self.session
        return await withTaskGroup(of: WebSocketCloseFrame??.self) { group in
            group.addTask { .some(try? await session.value) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            guard let ended = first else {
                session.cancel()
                return nil
            }
            return ended
        }
    }
}

/// Frames received but not yet read, and the reader waiting for the next one.
private actor Inbox {
    private var buffer: [String] = []
    private var head = 0
    private var waiter: (id: Int, continuation: CheckedContinuation<String?, any Error>)?
    private var waiterCount = 0
    private var isOpen = false
    private var isFinished = false
    private var openWaiters: [CheckedContinuation<Bool, Never>] = []

    func opened() {
        isOpen = true
        openWaiters.forEach { $0.resume(returning: true) }
        openWaiters = []
    }

    func waitUntilOpen() async -> Bool {
        if isOpen { return true }
        if isFinished { return false }
        return await withCheckedContinuation { openWaiters.append($0) }
    }

    func push(_ text: String) {
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume(returning: text)
        } else {
            buffer.append(text)
        }
    }

    func finish() {
        isFinished = true
        openWaiters.forEach { $0.resume(returning: isOpen) }
        openWaiters = []
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume(returning: nil)
        }
    }

    func next(timeout: Duration) async throws -> String? {
        if head < buffer.count {
            defer { head += 1 }
            return buffer[head]
        }
        if isFinished { return nil }
        waiterCount += 1
        let id = waiterCount
        return try await withCheckedThrowingContinuation { continuation in
            waiter = (id, continuation)
            Task {
                try? await Task.sleep(for: timeout)
                self.expire(id)
            }
        }
    }

    private func expire(_ id: Int) {
        guard let waiter, waiter.id == id else { return }
        self.waiter = nil
        waiter.continuation.resume(throwing: TestSocket.TimedOut())
    }
}
