import Foundation
import Hub
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// One client's WebSocket session as the hub sees it: who it is, the trip groups it joined, and
/// its outbound side. Events wait in a bounded `OutboundQueue`, drained to the socket on its event
/// loop whenever it has something (an idle connection has no writer). A client that lets the
/// queue overflow is closed with 1008 rather than slowing anyone else down.
final class ClientConnection: Mailbox {
    /// Why the outbound side ended.
    enum CloseReason: Sendable, Equatable {
        case clientClosed
        case overflow
        case shutdown
    }

    let connectionID: ConnectionID
    let user: User
    let outbound: OutboundQueue
    /// The socket's event loop as a task executor: the tasks that handle its messages run there.
    let executor: EventLoopTaskExecutor
    /// After the hub closes the socket, how long the client has to read what was sent before it
    /// and answer, before the TCP connection is cut (also when the writer is stuck on a client
    /// that reads nothing). Cutting a connection with unread input resets it, and a reset drops
    /// whatever the client had not read yet, the close frame included.
    let closeGrace: TimeAmount
    private let channel: any Channel
    private let metrics: HubMetrics
    private let logger: Logger
    private let reason = Mutex<CloseReason?>(nil)
    private let joined = Mutex<Set<UUID>>([])

    var principal: Principal { Principal(userID: user.id, group: user.group) }

    init(
        id: ConnectionID, user: User, queueLength: Int, closeGrace: TimeAmount, channel: any Channel, metrics: HubMetrics,
        logger: Logger
    ) {
        self.connectionID = id
        self.user = user
        self.outbound = OutboundQueue(limit: queueLength)
        self.closeGrace = closeGrace
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

    func resumeEnded(trip: UUID, through seq: Int64) {
        enqueue(.text(OutboundEncoding.encodeResumeDone(trip: trip, through: seq)), coalescing: false)
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
        if why == .overflow { metrics.slowClientDropped() }
        let channel = self.channel
        channel.eventLoop.scheduleTask(in: closeGrace) { channel.close(promise: nil) }
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

    /// Drains on the socket's event loop: at once when already there (a trip actor running on
    /// this loop delivers straight to the socket), otherwise as one event-loop job. No task is
    /// made per frame (docs/benchmarks-history.md: tasks per write cost more than the writes).
    private func startDrain() {
        if channel.eventLoop.inEventLoop {
            drain()
        } else {
            channel.eventLoop.execute { self.drain() }
        }
    }

    /// Writes what waits, in order, until the queue is idle or finished. While the socket takes
    /// more, writes are not awaited; once NIO's buffer for it is full, the drain stops and goes
    /// on when the last write completes, so a client that reads slowly backs up into its own
    /// queue and nowhere else. A failed write ends the drain: the socket is closing.
    private func drain() {
        while true {
            switch outbound.next() {
            case .item(let item):
                if let written = write(frame(of: item)) {
                    resume(after: written)
                    return
                }
            case .idle:
                return
            case .finished:
                sendCloseFrame()
                return
            }
        }
    }

    /// The frame of a queued item, with room for the frame's header in front of it; an event is
    /// counted as sent by its type.
    private func frame(of item: Outbound) -> ByteBuffer {
        let text: String
        switch item {
        case .event(let event):
            metrics.sent(type: OutboundEncoding.type(of: event))
            if case .location(let location) = event {
                var buffer = emptyFrame(capacity: OutboundEncoding.locationCapacity)
                OutboundEncoding.write(location, into: &buffer)
                return buffer
            }
            text = OutboundEncoding.encode(event)
        case .text(let queued):
            text = queued
        }
        var buffer = emptyFrame(capacity: text.utf8.count)
        buffer.writeString(text)
        return buffer
    }

    /// A buffer whose first bytes are kept for the WebSocket header (at most 10 bytes from a
    /// server), so NIO's encoder puts it there and writes the frame as one piece instead of two.
    private func emptyFrame(capacity: Int) -> ByteBuffer {
        let headerRoom = 10
        var buffer = channel.allocator.buffer(capacity: headerRoom + capacity)
        buffer.moveWriterIndex(forwardBy: headerRoom)
        buffer.moveReaderIndex(forwardBy: headerRoom)
        return buffer
    }

    private func resume(after written: EventLoopFuture<Void>) {
        written.whenComplete { result in
            switch result {
            case .success: self.drain()
            case .failure(let error): self.logger.debug("outbound write failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Writes one text frame; returns its completion when the socket takes no more for now.
    private func write(_ data: ByteBuffer) -> EventLoopFuture<Void>? {
        let frame = WebSocketFrame(fin: true, opcode: .text, data: data)
        guard !channel.isWritable else {
            channel.writeAndFlush(frame, promise: nil)
            return nil
        }
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(frame, promise: written)
        return written.futureResult
    }

    private func sendCloseFrame() {
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
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data), promise: nil)
    }
}
