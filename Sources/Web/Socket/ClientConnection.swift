import Foundation
import Hub
import Logging
import NIOCore
import NIOWebSocket
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
    /// The socket's event loop as a task executor: drains run there.
    let executor: EventLoopTaskExecutor
    private let channel: any Channel
    private let metrics: HubMetrics
    private let logger: Logger
    private let reason = Mutex<CloseReason?>(nil)
    private let joined = Mutex<Set<UUID>>([])

    var principal: Principal { Principal(userID: user.id, group: user.group) }

    init(
        id: ConnectionID, user: User, queueLength: Int, channel: any Channel, metrics: HubMetrics, logger: Logger
    ) {
        self.connectionID = id
        self.user = user
        self.outbound = OutboundQueue(limit: queueLength)
        self.executor = EventLoopTaskExecutor(channel.eventLoop)
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
        Task(executorPreference: executor) { await self.drain() }
    }

    /// Writes what waits, in order, until the queue is idle or finished.
    private func drain() async {
        do {
            while true {
                switch outbound.next() {
                case .item(.event(let event)):
                    try await write(OutboundEncoding.encode(event))
                    metrics.sent(type: OutboundEncoding.type(of: event))
                case .item(.text(let text)):
                    try await write(text)
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

    /// Writes one text frame. While the socket takes more, the write is not awaited (one thread
    /// hop less per message); once NIO's buffer for it is full, the drain waits, so a client that
    /// reads slowly backs up into its own queue and nowhere else.
    private func write(_ text: String) async throws {
        let frame = WebSocketFrame(fin: true, opcode: .text, data: channel.allocator.buffer(string: text))
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(frame, promise: written)
        if !channel.isWritable { try await written.futureResult.get() }
    }

    private func sendCloseFrame() async throws {
        let (code, reason): (WebSocketErrorCode, String)
        switch closeReason {
        case .overflow:
            logger.warning("client too slow: outbound queue overflowed, closing with 1008")
            (code, reason) = (.policyViolation, "Outbound queue overflow: the client reads too slowly.")
        case .shutdown:
            (code, reason) = (.goingAway, "The hub is shutting down.")
        case .clientClosed, nil:
            return
        }
        var data = channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
    }
}
