import Foundation
import Hub
import Synchronization

/// A connection on another node, as this node's trips and driver map see it: what it is sent
/// crosses NATS to that node, which hands it to the connection. Trips keep their per-member
/// order and `resume` bookkeeping for it exactly as for a local socket.
final class RemoteMailbox: Mailbox {
    /// Local ids of remote connections have the top bit set; local sockets count up from 1.
    static let idBit: UInt64 = 1 << 63

    let connectionID: ConnectionID
    let origin: Origin
    let principal: Principal
    private let link: ClusterLink
    private let subject: String
    private struct State {
        var joined: Set<UUID> = []
        var inDriverMap = false
    }

    private let state = Mutex(State())

    init(number: UInt64, origin: Origin, principal: Principal, link: ClusterLink) {
        self.connectionID = ConnectionID(Self.idBit | number)
        self.origin = origin
        self.principal = principal
        self.link = link
        self.subject = Subject.node(origin.node)
    }

    func deliver(_ event: HubEvent) {
        let kind: ClusterLink.Kind = if case .location = event { .location } else { .event }
        link.publish(subject, Delivery(connection: origin.connection, events: [event], isReplay: false), kind: kind)
    }

    func replay(_ events: [HubEvent]) {
        guard !events.isEmpty else { return }
        link.publish(subject, Delivery(connection: origin.connection, events: events, isReplay: true), kind: .event)
    }

    /// Sent on the same subject as the replay before it, so it arrives after it.
    func resumeEnded(trip: UUID, through seq: Int64) {
        link.publish(
            subject,
            Delivery(connection: origin.connection, events: [], isReplay: true, resumeEnded: .init(trip: trip, through: seq)),
            kind: .event
        )
    }

    /// Trips of this node the connection joined.
    var joined: Set<UUID> { state.withLock { $0.joined } }

    func joined(_ trips: Set<UUID>) {
        state.withLock { $0.joined.formUnion(trips) }
    }

    /// Marks the connection as on this node's driver map; false when it already was.
    func enterDriverMap() -> Bool {
        state.withLock { state in
            defer { state.inDriverMap = true }
            return !state.inDriverMap
        }
    }
}

/// The connections of other nodes this node knows, by where they are.
final class RemoteConnections: Sendable {
    private struct State {
        var byOrigin: [Origin: RemoteMailbox] = [:]
        var nextNumber: UInt64 = 1
        /// Connections known to be closed, oldest first: a notice or request about one that
        /// arrives after its close (the close came first on another subject or path) must not
        /// bring it back as a stale member. Bounded: the oldest are forgotten first.
        var closed: Set<Origin> = []
        var closedOrder: [Origin] = []
    }

    /// How many closed connections are remembered.
    static let closedMemory = 65_536

    private let state = Mutex(State())
    private let link: ClusterLink

    init(link: ClusterLink) {
        self.link = link
    }

    /// The mailbox of a remote connection, made on first sight; nil once it closed.
    func mailbox(for origin: Origin, principal: Principal) -> RemoteMailbox? {
        state.withLock { state in
            if let known = state.byOrigin[origin] { return known }
            guard !state.closed.contains(origin) else { return nil }
            let mailbox = RemoteMailbox(number: state.nextNumber, origin: origin, principal: principal, link: link)
            state.nextNumber += 1
            state.byOrigin[origin] = mailbox
            return mailbox
        }
    }

    func existing(_ origin: Origin) -> RemoteMailbox? {
        state.withLock { $0.byOrigin[origin] }
    }

    /// The connection closed: removes it, and remembers it so it is never made again.
    func remove(_ origin: Origin) -> RemoteMailbox? {
        state.withLock { state in
            if state.closed.insert(origin).inserted {
                state.closedOrder.append(origin)
                if state.closedOrder.count > Self.closedMemory {
                    let forgotten = state.closedOrder.prefix(state.closedOrder.count - Self.closedMemory / 2)
                    state.closed.subtract(forgotten)
                    state.closedOrder.removeFirst(forgotten.count)
                }
            }
            return state.byOrigin.removeValue(forKey: origin)
        }
    }

    /// Removes and returns the connections of `node` that `isGone` picks.
    func remove(ofNode node: String, where isGone: (RemoteMailbox) -> Bool) -> [RemoteMailbox] {
        state.withLock { state in
            let gone = state.byOrigin.values.filter { $0.origin.node == node && isGone($0) }
            for mailbox in gone { state.byOrigin[mailbox.origin] = nil }
            return gone
        }
    }

    var count: Int { state.withLock { $0.byOrigin.count } }
}
