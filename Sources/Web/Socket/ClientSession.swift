import Foundation
import Hub
import HummingbirdWebSocket
import Logging
import Persistence

/// The two halves of one WebSocket session: reading and dispatching client messages in
/// order, and writing the connection's outbound queue to the socket.
struct ClientSession: Sendable {
    let hub: Hub
    /// Where finished trips live once they leave memory.
    let store: any SnapshotStore
    let connection: ClientConnection
    let metrics: HubMetrics
    let maxMessageSize: Int
    let logger: Logger

    /// Messages larger than this are not even assembled; the socket closes with 1009.
    /// Between `maxMessageSize` and this, the client gets a `too_large` error instead.
    static func transportLimit(forMessageSize size: Int) -> Int {
        max(size * 4, 1 << 20)
    }

    func readLoop(_ inbound: WebSocketInboundStream) async {
        do {
            for try await message in inbound.messages(maxSize: Self.transportLimit(forMessageSize: maxMessageSize)) {
                switch message {
                case .text(let text):
                    await handle(text)
                case .binary:
                    reject(WireError(code: .badMessage, message: "Binary frames are not supported; send JSON text."))
                }
            }
        } catch {
            logger.debug("inbound stream ended", metadata: ["error": "\(error)"])
        }
    }

    func writeLoop(_ outbound: WebSocketOutboundWriter) async {
        do {
            for await item in connection.outbound {
                switch item {
                case .event(let event):
                    try await outbound.write(.text(OutboundEncoding.encode(event)))
                    metrics.sent(type: "echo.message")
                case .text(let text):
                    try await outbound.write(.text(text))
                }
            }
            switch connection.closeReason {
            case .overflow:
                logger.warning("client too slow: outbound queue overflowed, closing with 1008")
                try await outbound.close(.policyViolation, reason: "Outbound queue overflow: the client reads too slowly.")
            case .shutdown:
                try await outbound.close(.goingAway, reason: "The hub is shutting down.")
            case .clientClosed, nil:
                break
            }
        } catch {
            logger.debug("outbound write failed", metadata: ["error": "\(error)"])
        }
    }

    private func handle(_ text: String) async {
        guard text.utf8.count <= maxMessageSize else {
            metrics.received(type: nil)
            reject(WireError(code: .tooLarge, message: "Messages may be at most \(maxMessageSize) bytes."))
            return
        }
        switch ClientMessageParser.parse(text) {
        case .failure(let error):
            metrics.received(type: error.requestType)
            reject(error)
        case .success(.echo):
            metrics.received(type: "echo.message")
            connection.enqueue(.text(text))
            metrics.sent(type: "echo.message")
        case .success(.createTrip(let request)):
            metrics.received(type: "create.trip")
            do throws(HubError) {
                let view = try await hub.createTrip(request, by: connection.principal, from: connection)
                connection.joined([view.trip.id])
            } catch {
                reject(error, requestType: "create.trip")
            }
        case .success(.updateTrip(let id, let update)):
            metrics.received(type: "update.trip")
            do throws(HubError) {
                let view = try await hub.updateTrip(id: id, update, by: connection.principal, from: connection)
                connection.joined([view.trip.id])
            } catch {
                // A finished trip leaves memory once stored; it still refuses changes the same way.
                if error.code == .notFound, (try? await store.trip(id: id)) != nil {
                    reject(HubError(.invalidTransition, "The trip is finished and takes no more changes."), requestType: "update.trip")
                } else {
                    reject(error, requestType: "update.trip")
                }
            }
        }
    }

    private func reject(_ error: HubError, requestType: String) {
        reject(ErrorReply(error, requestType: requestType))
    }

    private func reject(_ error: WireError) {
        reject(ErrorReply(error))
    }

    private func reject(_ reply: ErrorReply) {
        metrics.error(code: reply.code)
        logger.info("rejected message", metadata: ["code": "\(reply.code)", "type": "\(reply.requestType ?? "-")"])
        connection.enqueue(.text(OutboundEncoding.encode(reply)))
    }
}
