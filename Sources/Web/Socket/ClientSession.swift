import Foundation
import Hub
import Logging
import NIOCore
import Persistence
import Synchronization

/// What one client's messages do: each is parsed, checked and carried out through the hub, in
/// arrival order (`InboundPump` calls `handle` one message at a time). Replies and events go out
/// through the connection's queue (`ClientConnection`).
final class ClientSession: Sendable {
    let hub: Hub
    /// Where finished trips live once they leave memory.
    let store: any SnapshotStore
    let connection: ClientConnection
    let metrics: HubMetrics
    let maxMessageSize: Int
    /// `update.location` messages a connection may send per second.
    let locationRate: Double
    /// Every other message (bad ones too) a connection may send per second.
    let messageRate: Double
    let logger: Logger
    private let locationLimiter: Mutex<RateLimiter>
    private let messageLimiter: Mutex<RateLimiter>
    /// The last fix this socket handed to a trip that had not recorded it yet (`Hub.recordFix`),
    /// until a message that awaits an actor has waited for it (`finish`).
    private let unsettledFix = Mutex<FixReceipt?>(nil)

    init(
        hub: Hub, store: any SnapshotStore, connection: ClientConnection, metrics: HubMetrics, maxMessageSize: Int,
        locationRate: Double, messageRate: Double, logger: Logger
    ) {
        self.hub = hub
        self.store = store
        self.connection = connection
        self.metrics = metrics
        self.maxMessageSize = maxMessageSize
        self.locationRate = locationRate
        self.logger = logger
        self.messageRate = messageRate
        locationLimiter = Mutex(RateLimiter(perSecond: locationRate))
        messageLimiter = Mutex(RateLimiter(perSecond: messageRate))
    }

    /// Messages larger than this are not even assembled; the socket closes with 1009.
    /// Between `maxMessageSize` and this, the client gets a `too_large` error instead.
    static func transportLimit(forMessageSize size: Int) -> Int {
        max(size * 4, 1 << 20)
    }

    /// Joins the hub: driver map and trip groups.
    func start() async {
        connection.joined(await hub.connect(connection.principal, mailbox: connection))
    }

    /// Leaves every group once the socket is gone.
    func end() async {
        connection.close(.clientClosed)
        await hub.disconnect(connection.principal, mailbox: connection, joined: connection.joinedTrips)
    }

    /// A binary message: the protocol is JSON text.
    func rejectBinary() {
        metrics.received(type: nil)
        reject(WireError(code: .badMessage, message: "Binary frames are not supported; send JSON text."))
    }

    /// Carries out one text message.
    func handle(_ message: ByteBuffer) async {
        if let pending = handleNow(message) { await finish(pending) }
    }

    /// Carries out what of a message needs no waiting: checks, parsing, errors, echo, and a GPS
    /// fix (its move on the driver map, and its record by the trip its driver drives). What needs
    /// to await an actor is returned for `finish`. `InboundPump` calls this on the socket's event
    /// loop when nothing else of the socket waits, so most messages need no task at all.
    func handleNow(_ message: ByteBuffer) -> ClientMessage? {
        guard message.readableBytes <= maxMessageSize else {
            metrics.received(type: nil)
            reject(allowMessage(requestType: nil) ?? WireError(code: .tooLarge, message: "Messages may be at most \(maxMessageSize) bytes."))
            return nil
        }
        let parsed = ClientMessageParser.parse(message)
        switch parsed {
        case .success(.updateLocation):
            // Locations have a rate of their own, below.
            break
        case .success(let other):
            if let refusal = allowMessage(requestType: other.type) {
                metrics.received(type: other.type)
                reject(refusal)
                return nil
            }
        case .failure(let error):
            metrics.received(type: error.requestType)
            reject(allowMessage(requestType: error.requestType) ?? error)
            return nil
        }
        switch parsed {
        case .failure:
            return nil
        case .success(.echo):
            metrics.received(type: "echo.message")
            connection.enqueue(.text(String(buffer: message)))
            metrics.sent(type: "echo.message")
            return nil
        case .success(.updateLocation(let fix)):
            metrics.received(type: "update.location")
            guard locationLimiter.withLock({ $0.allow() }) else {
                reject(
                    WireError(
                        code: .rateLimited, message: "At most \(Int(locationRate)) locations per second; this one was dropped.",
                        requestType: "update.location"
                    )
                )
                return nil
            }
            do throws(HubError) {
                let receipt = try hub.recordFix(fix, by: connection.principal, from: connection)
                if !receipt.isSettled { unsettledFix.withLock { $0 = receipt } }
                return nil
            } catch {
                reject(error, requestType: "update.location")
                return nil
            }
        case .success(let message):
            return message
        }
    }

    /// Counts a message other than a location against the socket's message rate; nil when it is
    /// within it, else the `rate_limited` error it gets instead of being carried out.
    private func allowMessage(requestType: String?) -> WireError? {
        guard !messageLimiter.withLock({ $0.allow() }) else { return nil }
        return WireError(
            code: .rateLimited, message: "At most \(Int(messageRate)) messages per second besides locations; this one was dropped.",
            requestType: requestType
        )
    }

    /// Carries out what `handleNow` left over. Kept out of line: its large frame exists only
    /// while a message is handled, not for the life of the connection.
    @inline(never)
    func finish(_ message: ClientMessage) async {
        // Fixes handed to a trip reach it before anything this message does. (A driver drives
        // one trip at a time, and a trip records fixes in order: the last one is enough.)
        if let receipt = unsettledFix.withLock({ $0.take() }) {
            await receipt.settle()
        }
        let principal = connection.principal
        switch message {
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
                _ = try await hub.cancelTrip(id: id, by: principal, from: connection)
            } catch {
                await reject(error, tripID: id, requestType: "cancel.trip")
            }
        case .resume(let trips):
            metrics.received(type: "resume")
            for (id, lastSeen) in trips.sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
                await resume(id, after: lastSeen)
            }
        case .declineTrip(let id):
            // Answered by the offer's withdrawal (`trip.offer_withdrawn`, reason `declined`).
            metrics.received(type: "decline.trip")
            do throws(HubError) {
                try await hub.declineTrip(id: id, by: principal, from: connection)
            } catch {
                if error.code == .notFound, (try? await store.trip(id: id)) != nil {
                    reject(HubError(.noOffer, "The trip is finished: there is no offer of it to decline."), requestType: "decline.trip")
                } else {
                    reject(error, requestType: "decline.trip")
                }
            }
        case .updateAvailability(let online):
            metrics.received(type: "update.availability")
            do throws(HubError) {
                let now = try await hub.setAvailability(online: online, by: principal)
                connection.enqueue(.text(OutboundEncoding.encodeAvailability(online: now)))
                metrics.sent(type: "driver.availability")
            } catch {
                reject(error, requestType: "update.availability")
            }
        case .echo, .updateLocation:
            // `handleNow` carries these out whole.
            break
        }
    }

    /// Replays one trip's missed events; a trip that finished and left memory gets its final
    /// state from the store when the client has not seen it.
    private func resume(_ id: UUID, after lastSeen: Int64) async {
        do throws(HubError) {
            try await hub.resumeAnywhere(tripID: id, after: lastSeen, by: connection.principal, from: connection)
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
            connection.resumeEnded(trip: id, through: max(lastSeen, stored.seq))
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
