import NIOCore
import SocketClient

/// One client WebSocket on the hub's `/taxi/` (the project's one client): writes every text
/// handed to `send`, in order, and gives every text frame it receives to the recorder.
struct EchoConnection: Sendable {
    /// The hub did not accept the WebSocket.
    struct Refused: Error, CustomStringConvertible {
        let reason: WebSocketClient.OpenError
        var description: String { "the hub refused the WebSocket: \(reason)" }
    }

    private let client: WebSocketClient

    /// Connects to `path` on 127.0.0.1:`port` and returns once the WebSocket is open; throws if it
    /// cannot be opened.
    static func open(port: Int, path: String, recorder: LatencyRecorder) async throws -> EchoConnection {
        var options = WebSocketClient.Options()
        options.maxFrameSize = 1 << 16
        do {
            let client = try await WebSocketClient.open(
                port: port, path: path, options: options, events: .init(text: { recorder.received(String(buffer: $0)) })
            )
            return EchoConnection(client: client)
        } catch let error as WebSocketClient.OpenError {
            throw Refused(reason: error)
        }
    }

    /// Sends `text` (after everything sent before).
    func send(_ text: String) {
        client.send(text)
    }

    /// Closes the WebSocket after the texts sent so far, and waits until it is closed.
    func close() async {
        await client.close()
    }
}
