import Foundation
import Hub

/// The shared subjects: connections, drivers, users and takeovers of the other nodes.
extension ClusterNode {
    /// Handles notices one at a time, in the order they arrived, until the node stops.
    func handleNotices() async {
        for await message in notices {
            switch message.subject {
            case Subject.connections:
                if let notice = link.decode(ConnectionNotice.self, from: message, kind: .notice) { await apply(notice) }
            case Subject.drivers:
                if let notice = link.decode(DriverNotice.self, from: message, kind: .notice) { await apply(notice) }
            case Subject.users:
                if let user = link.decode(User.self, from: message, kind: .notice) { hub.users.adopt(user) }
            case Subject.takeovers:
                if let notice = link.decode(TakeoverNotice.self, from: message, kind: .notice) { await apply(notice) }
            default:
                logger.warning("notice on an unknown subject", metadata: ["subject": "\(message.subject)"])
            }
        }
    }

    /// A socket opened or closed on another node: it joins (leaves) this node's trips of its
    /// user, and a driver this node's driver map, so trips created here can be offered to it.
    func apply(_ notice: ConnectionNotice) async {
        guard notice.origin.node != settings.nodeID else { return }
        await forgetEarlierRuns(of: notice.origin)
        if notice.isOpen {
            // Nil: its close was handled first (a closed connection never comes back).
            guard let mailbox = remotes.mailbox(for: notice.origin, principal: notice.principal) else { return }
            mailbox.joined(await hub.joinTrips(of: notice.principal, mailbox: mailbox, sendingState: notice.sendState))
            if notice.principal.group == .driver, mailbox.enterDriverMap() {
                hub.drivers.join(mailbox, driverID: notice.principal.userID)
            }
        } else if let mailbox = remotes.remove(notice.origin) {
            await hub.disconnect(mailbox.principal, mailbox: mailbox, joined: mailbox.joined)
        }
    }

    /// Where another node's drivers are: each on this node's driver map with its position and
    /// whether it is busy, so this node's new trips are offered to the nearest drivers of any node.
    func apply(_ notice: DriverNotice) async {
        guard notice.node != settings.nodeID else { return }
        let sample = Origin(node: notice.node, incarnation: notice.incarnation, connection: 0)
        await forgetEarlierRuns(of: sample)
        for entry in notice.entries {
            let origin = Origin(node: notice.node, incarnation: notice.incarnation, connection: entry.connection)
            guard let mailbox = remotes.mailbox(for: origin, principal: Principal(userID: entry.driverID, group: .driver)) else {
                continue
            }
            if mailbox.enterDriverMap() { hub.drivers.join(mailbox, driverID: entry.driverID) }
            if let point = entry.point { hub.drivers.move(mailbox.connectionID, to: point) }
            hub.drivers.report(mailbox.connectionID, busy: entry.activeTrip != nil, online: entry.online ?? true, fresh: entry.fresh ?? true)
        }
        var gone = notice.left.compactMap { remotes.remove(Origin(node: notice.node, incarnation: notice.incarnation, connection: $0)) }
        if notice.isFull {
            let listed = Set(notice.entries.map(\.connection))
            gone += remotes.remove(ofNode: notice.node) { mailbox in
                mailbox.principal.group == .driver && mailbox.origin.incarnation == notice.incarnation
                    && !listed.contains(mailbox.origin.connection) && mailbox.joined.isEmpty
            }
        }
        for mailbox in gone { await hub.disconnect(mailbox.principal, mailbox: mailbox, joined: mailbox.joined) }
    }

    /// Another node took over an expired node's trips: the expired node's sockets are gone, and
    /// this node's sockets of the trips' users join the trips at their new owner.
    func apply(_ notice: TakeoverNotice) async {
        retired.retire(node: notice.from, incarnation: notice.incarnation)
        await forget(node: notice.from)
        guard notice.by != settings.nodeID else { return }
        for local in localConnections(of: Set(notice.users)) {
            link.publish(
                Subject.connections,
                ConnectionNotice(origin: origin(of: local.mailbox), principal: local.principal, isOpen: true, sendState: true),
                kind: .notice
            )
        }
    }

    /// Forgets every connection of `node` (it expired or restarted).
    func forget(node: String, keeping incarnation: UInt64? = nil) async {
        let gone = remotes.remove(ofNode: node) { $0.origin.incarnation != incarnation }
        for mailbox in gone { await hub.disconnect(mailbox.principal, mailbox: mailbox, joined: mailbox.joined) }
    }

    /// A node seen under a new incarnation restarted: its earlier connections are gone.
    private func forgetEarlierRuns(of origin: Origin) async {
        guard noteIncarnation(origin) else { return }
        await forget(node: origin.node, keeping: origin.incarnation)
    }
}
