import Foundation
import Hub
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

/// One client's WebSocket session as the hub sees it: who it is, the trip groups it joined, and
/// its outbound side. Events wait in a bounded `OutboundQueue`; a short-lived task drains it to
/// the socket whenever it has something (an idle connection has no writer task). A client that
/// lets the queue overflow is closed with 1008 rather than slowing anyone else down.
final class ClientConnection: Mailbox {
    /// Why the outbound side ended.
    enum CloseReason: Sendable, Equatable {
        case clientClosed
        case overflow
        case shutdown
    }

    /// After the hub closes a socket, how long the client has to answer before the TCP
    /// connection is cut (also when the writer is stuck on a client that reads nothing).
    static let closeGrace: TimeAmount = .seconds(5)

    let connectionID: ConnectionID
    let user: User
    let outbound: OutboundQueue
    private let socket: WebSocketOutboundWriter
    private let channel: any Channel
    private let metrics: HubMetrics
    private let logger: Logger
    private let reason = Mutex<CloseReason?>(nil)
    private let joined = Mutex<Set<UUID>>([])

    var principal: Principal { Principal(userID: user.id, group: user.group) }

    init(
        id: ConnectionID, user: User, queueLength: Int, socket: WebSocketOutboundWriter, channel: any Channel,
        metrics: HubMetrics, logger: Logger
    ) {
        self.connectionID = id
        self.user = user
        self.outbound = OutboundQueue(limit: queueLength)
        self.socket = socket
        self.channel = channel
        self.metrics = metrics
        self.logger = logger
    }

    func deliver(_ event: HubEvent) {
        enqueue(.event(event))
    }

    func replay(_ events: [HubEvent]) {
        for event in events { enqueue(.event(event), coalescing: false) }
    }

    func enqueue(_ item: Outbound, coalescing: Bool = true) {
        switch outbound.enqueue(item, coalescing: coalescing) {
        case .startDrain: startDrain()
        case .queued: break
        case .refused: if closeReason == nil { close(.overflow) }
        }
    }

    /// Ends the outbound side; the first reason given is the one reported. When the hub closes
    /// (overflow, shutdown), the client gets a close frame and `closeGrace` to answer it.
    func close(_ why: CloseReason) {
        let first = reason.withLock { reason in
            defer { if reason == nil { reason = why } }
            return reason == nil
        }
        if outbound.finish() { startDrain() }
        guard first, why != .clientClosed else { return }
        let channel = self.channel
        channel.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
    }

    var closeReason: CloseReason? {
        reason.withLock { $0 }
    }

    func joined(_ tripIDs: Set<UUID>) {
        joined.withLock { $0.formUnion(tripIDs) }
    }

    var joinedTrips: Set<UUID> {
        joined.withLock { $0 }
    }

    private func startDrain() {
        Task { await self.drain() }
    }

    /// Writes what waits, in order, until the queue is idle or finished.
    private func drain() async {
        do {
            while true {
                switch outbound.next() {
                case .item(.event(let event)):
                    try await socket.write(.text(OutboundEncoding.encode(event)))
                    metrics.sent(type: OutboundEncoding.type(of: event))
                case .item(.text(let text)):
                    try await socket.write(.text(text))
                case .idle:
                    return
                case .finished:
                    try await sendCloseFrame()
                    return
                }
            }
        } catch {
            logger.debug("outbound write failed", metadata: ["error": "\(error)"])
        }
    }

    private func sendCloseFrame() async throws {
        switch closeReason {
        case .overflow:
            logger.warning("client too slow: outbound queue overflowed, closing with 1008")
            try await socket.close(.policyViolation, reason: "Outbound queue overflow: the client reads too slowly.")
        case .shutdown:
            try await socket.close(.goingAway, reason: "The hub is shutting down.")
        case .clientClosed, nil:
            break
        }
    }
}
