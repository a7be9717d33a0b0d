import Foundation
import Hub

/// What a node does on its own schedule: renew its lease, take over expired nodes, and tell the
/// others where its drivers are.
extension ClusterNode {
    /// Runs the node's duties (notices, lease, its local deadline, driver positions) until the
    /// task is cancelled: the server runs them for its whole life (`ClusterDuties`).
    public func runDuties() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.handleNotices() }
            group.addTask { await self.keepLease() }
            group.addTask { await self.guardLocalLease() }
            group.addTask { await self.gossipDrivers() }
        }
    }

    /// Renews this node's lease every third of its length and takes over nodes whose lease ran out.
    func keepLease() async {
        let period = settings.lease / 3
        while !Task.isCancelled {
            do {
                let sent = ContinuousClock.now
                // A renewal over a link that lost its packets would hang: it is given up at the
                // local deadline, where `guardLocalLease` stops the node anyway. A slow renewal
                // that ends before it still counts (from when it was sent).
                let limit = max(localLeaseRemaining, .milliseconds(1))
                let renewed = try await withDeadline(limit, "a lease renewal") { [leases, settings] in
                    try await leases.renew(lease: settings.lease)
                }
                status.lease(renewed: renewed, error: renewed ? nil : "another node took this node's trips over")
                if !renewed { leaseLost() }
                extendLocalLease(sentAt: sent)
                for node in try await leases.expiredNodes() { try await takeOver(node) }
                status.liveNodes(try await leases.liveNodes().count)
            } catch {
                status.lease(renewed: false, error: "\(error)")
                logger.error("cannot renew the cluster lease", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: period)
        }
    }

    /// Another node took this node's trips over (it could not renew for a whole lease): its
    /// actors are no longer the trips' owners. The store refuses its writes to them already
    /// (fenced upserts); the process stops so that its clients reconnect to a node that owns
    /// their trips, and a supervisor starts it again as a fresh node.
    private func leaseLost() -> Never {
        logger.critical("this node's lease was taken over by another node; stopping so its clients move to the trips' new owner")
        exit(ProcessExit.leaseLost)
    }

    /// Takes an expired node's trips over, when this node is the one that wins it.
    func takeOver(_ node: String) async throws {
        guard let taken = try await leases.takeOver(node: node) else { return }
        retired.retire(node: node, incarnation: taken.incarnation)
        hub.restore(users: [], trips: taken.trips, tracks: taken.tracks)
        status.tookOver(trips: taken.trips.count)
        logger.notice("took over an expired node", metadata: ["node": "\(node)", "trips": "\(taken.trips.count)"])
        await forget(node: node)
        let users = Set(taken.trips.flatMap { [$0.riderID, $0.driverID].compactMap { $0 } })
        for local in localConnections(of: users) {
            _ = await hub.joinTrips(of: local.principal, mailbox: local.mailbox, sendingState: true)
        }
        link.publish(Subject.takeovers, TakeoverNotice(from: node, incarnation: taken.incarnation, by: settings.nodeID, users: users.sorted()), kind: .notice)
    }

    /// Publishes this node's drivers every `driverGossipInterval`: those that joined, changed cell,
    /// trip or availability (online, a fresh position) since the last notice, and the ones that
    /// left; every fifth notice lists all.
    func gossipDrivers() async {
        typealias Published = (cell: CellID?, trip: UUID?, online: Bool, fresh: Bool)
        var published: [UInt64: Published] = [:]
        var round = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: settings.driverGossipInterval)
            let isFull = round % 5 == 0
            round += 1
            let current = hub.drivers.connections { $0.rawValue & RemoteMailbox.idBit == 0 }
            var entries: [DriverNotice.Entry] = []
            var now: [UInt64: Published] = [:]
            let clock = hub.clock.now().microseconds
            for driver in current {
                let cell = driver.point.map(hub.drivers.grid.cell(containing:))
                let fresh = driver.lastFix.map { clock - $0.microseconds < hub.drivers.staleAfter } ?? false
                let state: Published = (cell: cell, trip: driver.activeTrip, online: driver.isOnline, fresh: fresh)
                now[driver.connection.rawValue] = state
                let before = published[driver.connection.rawValue]
                if isFull || before == nil || before!.cell != cell || before!.trip != driver.activeTrip || before!.online != driver.isOnline
                    || before!.fresh != fresh
                {
                    entries.append(
                        .init(
                            connection: driver.connection.rawValue, driverID: driver.driverID, point: driver.point, activeTrip: driver.activeTrip,
                            online: driver.isOnline, fresh: fresh
                        )
                    )
                }
            }
            let left = published.keys.filter { now[$0] == nil }
            published = now
            guard isFull || !entries.isEmpty || !left.isEmpty else { continue }
            link.publish(
                Subject.drivers,
                DriverNotice(node: settings.nodeID, incarnation: incarnation, isFull: isFull, entries: entries, left: left),
                kind: .notice
            )
        }
    }
}
