import Foundation
import Hub
import HummingbirdWebSocket
import Logging
import Persistence

/// The inbound half of one WebSocket session: reads client messages and dispatches them in
/// order (the outbound half is `ClientConnection`).
struct ClientSession: Sendable {
    let hub: Hub
    /// Where finished trips live once they leave memory.
    let store: any SnapshotStore
    let connection: ClientConnection
    let metrics: HubMetrics
    let maxMessageSize: Int
    /// `update.location` messages a connection may send per second.
    let locationRate: Double
    let logger: Logger

    /// Messages larger than this are not even assembled; the socket closes with 1009.
    /// Between `maxMessageSize` and this, the client gets a `too_large` error instead.
    static func transportLimit(forMessageSize size: Int) -> Int {
        max(size * 4, 1 << 20)
    }

    func readLoop(_ inbound: WebSocketInboundStream) async {
        var locationLimiter = RateLimiter(perSecond: locationRate)
        do {
            for try await message in inbound.messages(maxSize: Self.transportLimit(forMessageSize: maxMessageSize)) {
                switch message {
                case .text(let text):
                    await handle(text, locationLimiter: &locationLimiter)
                case .binary:
                    reject(WireError(code: .badMessage, message: "Binary frames are not supported; send JSON text."))
                }
            }
        } catch {
            logger.debug("inbound stream ended", metadata: ["error": "\(error)"])
        }
    }

    private func handle(_ text: String, locationLimiter: inout RateLimiter) async {
        guard text.utf8.count <= maxMessageSize else {
            metrics.received(type: nil)
            reject(WireError(code: .tooLarge, message: "Messages may be at most \(maxMessageSize) bytes."))
            return
        }
        let message: ClientMessage
        switch ClientMessageParser.parse(text) {
        case .failure(let error):
            metrics.received(type: error.requestType)
            reject(error)
            return
        case .success(let parsed):
            message = parsed
        }
        let principal = connection.principal
        switch message {
        case .echo:
            metrics.received(type: "echo.message")
            connection.enqueue(.text(text))
            metrics.sent(type: "echo.message")
        case .createTrip(let request):
            metrics.received(type: "create.trip")
            do throws(HubError) {
                let view = try await hub.createTrip(request, by: principal, from: connection)
                connection.joined([view.trip.id])
            } catch {
                reject(error, requestType: "create.trip")
            }
        case .updateTrip(let id, let update):
            metrics.received(type: "update.trip")
            do throws(HubError) {
                let view = try await hub.updateTrip(id: id, update, by: principal, from: connection)
                connection.joined([view.trip.id])
            } catch {
                await reject(error, tripID: id, requestType: "update.trip")
            }
        case .cancelTrip(let id):
            metrics.received(type: "cancel.trip")
            do throws(HubError) {
                _ = try await hub.cancelTrip(id: id, by: principal)
            } catch {
                await reject(error, tripID: id, requestType: "cancel.trip")
            }
        case .updateLocation(let fix):
            metrics.received(type: "update.location")
            guard locationLimiter.allow() else {
                reject(
                    WireError(
                        code: .rateLimited, message: "At most \(Int(locationRate)) locations per second; this one was dropped.",
                        requestType: "update.location"
                    )
                )
                return
            }
            do throws(HubError) {
                try await hub.updateLocation(fix, by: principal, from: connection)
            } catch {
                reject(error, requestType: "update.location")
            }
        case .resume(let trips):
            metrics.received(type: "resume")
            for (id, lastSeen) in trips.sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
                await resume(id, after: lastSeen)
            }
        }
    }

    /// Replays one trip's missed events; a trip that finished and left memory gets its final
    /// state from the store when the client has not seen it.
    private func resume(_ id: UUID, after lastSeen: Int64) async {
        do throws(HubError) {
            _ = try await hub.resume(tripID: id, after: lastSeen, by: connection.principal, from: connection)
            connection.joined([id])
        } catch {
            guard error.code == .notFound, let stored = try? await store.trip(id: id) else {
                reject(error, requestType: "resume")
                return
            }
            guard stored.riderID == connection.user.id || stored.driverID == connection.user.id else {
                reject(HubError(.forbidden, "Only the trip's rider and driver can resume it."), requestType: "resume")
                return
            }
            if stored.seq > lastSeen {
                connection.enqueue(.event(.trip(hub.users.view(of: stored))))
            }
        }
    }

    /// A finished trip leaves memory once stored; it still refuses changes the same way.
    private func reject(_ error: HubError, tripID: UUID, requestType: String) async {
        if error.code == .notFound, (try? await store.trip(id: tripID)) != nil {
            reject(HubError(.invalidTransition, "The trip is finished and takes no more changes."), requestType: requestType)
        } else {
            reject(error, requestType: requestType)
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
