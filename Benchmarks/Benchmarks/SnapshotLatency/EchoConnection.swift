import HummingbirdWSClient
import Logging

/// One client WebSocket on the hub's `/taxi/`: writes every text handed to `send`, in order, and
/// gives every text frame it receives to the recorder.
final class EchoConnection: Sendable {
    /// The hub did not accept the WebSocket.
    struct Refused: Error {}

    private let outgoing: AsyncStream<String>.Continuation
    private let session: Task<Void, any Error>

    private init(outgoing: AsyncStream<String>.Continuation, session: Task<Void, any Error>) {
        self.outgoing = outgoing
        self.session = session
    }

    /// Connects to `url` and returns once the WebSocket is open; throws if it cannot be opened.
    static func open(url: String, recorder: LatencyRecorder, logger: Logger) async throws -> EchoConnection {
        let (texts, outgoing) = AsyncStream.makeStream(of: String.self)
        let (opened, openedSignal) = AsyncStream.makeStream(of: Bool.self)
        let session = Task {
            defer {
                openedSignal.yield(false)
                openedSignal.finish()
            }
            _ = try await WebSocketClient.connect(url: url, logger: logger) { inbound, outbound, _ in
                openedSignal.yield(true)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await text in texts {
                            try await outbound.write(.text(text))
                        }
                        try await outbound.close(.normalClosure, reason: nil)
                    }
                    group.addTask {
                        for try await message in inbound.messages(maxSize: 1 << 16) {
                            if case .text(let text) = message { recorder.received(text) }
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }
        var signals = opened.makeAsyncIterator()
        guard await signals.next() == true else {
            try await session.value
            throw Refused()
        }
        return EchoConnection(outgoing: outgoing, session: session)
    }

    /// Queues `text` for sending.
    func send(_ text: String) {
        outgoing.yield(text)
    }

    /// Closes the WebSocket after the queued texts are sent, and waits until it is closed.
    func close() async {
        outgoing.finish()
        _ = try? await session.value
    }
}
