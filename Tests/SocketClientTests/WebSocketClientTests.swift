import Foundation
import HubLauncher
import NIOCore
import NIOWebSocket
import SocketClient
import Synchronization
import Testing
import TestSupport

/// What a client's events saw, recorded from the event loop.
private final class Seen: Sendable {
    private let texts = Mutex<[String]>([])
    private let closeFrames = Mutex<[WebSocketClient.CloseFrame]>([])
    private let closed = Atomic<Bool>(false)

    var events: WebSocketClient.Events {
        WebSocketClient.Events(
            text: { buffer in self.texts.withLock { $0.append(String(buffer: buffer)) } },
            closed: { self.closed.store(true, ordering: .releasing) },
            closeFrame: { frame in self.closeFrames.withLock { $0.append(frame) } }
        )
    }

    var allTexts: [String] { texts.withLock { $0 } }
    var allCloseFrames: [WebSocketClient.CloseFrame] { closeFrames.withLock { $0 } }
    var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// Waits (up to 20 s) until `condition` holds.
    func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TestSocket.TimedOut() }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// The project's one WebSocket client (the load generator's and the tests'), against a real hub.
@Suite("WebSocketClient against a real hub", MachineLoad.shared, .timeLimit(.minutes(2)))
struct WebSocketClientTests {
    @Test("opens with a token, sends masked text and reads the answer; a close is answered with the server's close frame")
    func roundTrip() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("socket-client@example.com")
            let seen = Seen()
            let client = try await WebSocketClient.open(port: hub.port, path: "/taxi/?token=\(rider.access)", events: seen.events)
            client.send(#"{"type": "echo.message", "data": "hello"}"#)
            try await seen.waitUntil { !seen.allTexts.isEmpty }
            let answer = try parseJSONObject(try #require(seen.allTexts.first))
            #expect(answer["type"] as? String == "echo.message")
            #expect(answer["data"] as? String == "hello")
            #expect(!client.isClosed)
            await client.close()
            try await seen.waitUntil { seen.isClosed }
            #expect(client.isClosed)
            #expect(seen.allCloseFrames.first?.closeCode == .normalClosure)
        }
    }

    @Test("a refused upgrade throws the HTTP status; nothing listening throws a connect failure")
    func openErrors() async throws {
        try await LiveHub.run { hub in
            await #expect {
                _ = try await WebSocketClient.open(port: hub.port, path: "/taxi/?token=not-a-token", events: Seen().events)
            } throws: { error in
                guard case WebSocketClient.OpenError.refused(let status) = error else { return false }
                return status == 401 && (error as? WebSocketClient.OpenError)?.label == "http_401"
            }
        }
        let closedPort = try FreePort.find()
        await #expect {
            _ = try await WebSocketClient.open(port: closedPort, path: "/taxi/", events: Seen().events)
        } throws: { error in
            (error as? WebSocketClient.OpenError)?.label == "connect"
        }
    }
}
