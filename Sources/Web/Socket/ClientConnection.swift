import Foundation
import Hub
import Synchronization

/// One client's WebSocket session: who it is, the trip groups it joined, and its outbound
/// queue. The queue is bounded; a client that lets it overflow is closed with 1008 rather
/// than slowing anyone else down.
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
    private let reason = Mutex<CloseReason?>(nil)
    private let joined = Mutex<Set<UUID>>([])
    private let onOverflow: @Sendable () -> Void

    var principal: Principal { Principal(userID: user.id, group: user.group) }

    init(id: ConnectionID, user: User, queueLength: Int, onOverflow: @escaping @Sendable () -> Void = {}) {
        self.connectionID = id
        self.user = user
        self.onOverflow = onOverflow
        outbound = OutboundQueue(limit: queueLength)
    }

    func deliver(_ event: HubEvent) {
        enqueue(.event(event))
    }

    func replay(_ events: [HubEvent]) {
        for event in events { enqueue(.event(event), coalescing: false) }
    }

    func enqueue(_ item: Outbound, coalescing: Bool = true) {
        if !outbound.enqueue(item, coalescing: coalescing), closeReason == nil {
            close(.overflow)
        }
    }

    /// Ends the outbound queue; the first reason given is the one reported.
    func close(_ why: CloseReason) {
        let first = reason.withLock { reason in
            defer { if reason == nil { reason = why } }
            return reason == nil
        }
        outbound.finish()
        if first, why == .overflow { onOverflow() }
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
}
