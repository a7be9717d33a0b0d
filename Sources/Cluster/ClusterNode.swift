import Foundation
import Hub
import Logging
import NATSClient
import Persistence
import Synchronization

/// One node of a TaxiHub cluster: the bridge between this node's `Hub` and the other nodes,
/// over NATS and the shared PostgreSQL.
///
/// Every live trip has one owner, the node whose `TripActor` holds it (the node its rider's
/// request reached, or the node that took it over), recorded in PostgreSQL under that node's
/// lease. Other nodes reach the trip through its subject (`taxihub.trip.<id>`, which only the
/// owner subscribes): changes and resumes are requests the owner's actor answers, so one accept
/// race still has one winner; driver fixes are plain publishes. The owner's actor sees a
/// connection of another node as a `RemoteMailbox`, which sends what it gets to that node's
/// subject. docs/cluster.md explains the whole design.
///
/// To the web layer it is a `ClusterMember` (accounts, other nodes' trips, health, duties): the
/// protocols `Hub` defines, which the executable hands it.
public final class ClusterNode: RemoteTrips, ClusterMember {
    public let settings: ClusterSettings
    /// Which run of this node: connections of an earlier run are other connections.
    public let incarnation: UInt64
    let hub: Hub
    let link: ClusterLink
    let leases: PostgresClusterStore
    let store: any SnapshotStore
    let remotes: RemoteConnections
    public let status: ClusterStatus
    let logger: Logger
    /// This node's own sockets, by connection id, as deliveries from other nodes find them.
    private let locals = Mutex<[UInt64: LocalConnection]>([:])
    private let tripSubscriptions = Mutex<[UUID: NATSSubscription]>([:])
    private let standingSubscriptions = Mutex<[NATSSubscription]>([])
    /// The runs of other nodes that were taken over: their answers are stale.
    let retired = RetiredOwners()
    /// The latest incarnation seen of each other node.
    private let incarnations = Mutex<[String: UInt64]>([:])
    /// When this node stops acting as owner unless a renewal succeeds first, on the monotonic
    /// clock (see `extendLocalLease`).
    let localLeaseEnd = Mutex<ContinuousClock.Instant>(.now)
    /// Notices of the shared subjects, handled one at a time in arrival order.
    let notices: AsyncStream<NATSMessage>
    private let noticeSink: AsyncStream<NATSMessage>.Continuation

    struct LocalConnection {
        let mailbox: any Mailbox
        let principal: Principal
    }

    /// Connects to NATS (in the background when no server answers yet), registers this node's
    /// lease and joins the hub to the cluster. Call before the hub loads its state: the trips it
    /// restores then subscribe their subjects.
    public static func start(
        settings: ClusterSettings, hub: Hub, databaseURL: String, store: any SnapshotStore, logger: Logger
    ) async throws -> ClusterNode {
        let incarnation = UInt64.random(in: 1...UInt64(Int64.max))
        let status = ClusterStatus()
        let nats = try NATSConnection.connect(urls: settings.natsURLs, name: "taxi-hub-\(settings.nodeID)") { state in
            status.natsState(state == .connected)
            logger.notice("NATS \(state)")
        }
        let leases = try PostgresClusterStore(url: databaseURL, nodeID: settings.nodeID, incarnation: incarnation)
        let sent = ContinuousClock.now
        try await leases.register(lease: settings.lease)
        let node = ClusterNode(
            settings: settings, incarnation: incarnation, hub: hub, nats: nats, leases: leases, store: store, status: status,
            logger: logger
        )
        node.extendLocalLease(sentAt: sent)
        status.natsState(nats.state == .connected)
        try node.subscribeStanding()
        hub.attach(node)
        logger.info("cluster node \(settings.nodeID) joined", metadata: ["nats": "\(settings.natsURLs.joined(separator: ","))"])
        return node
    }

    private init(
        settings: ClusterSettings, incarnation: UInt64, hub: Hub, nats: NATSConnection, leases: PostgresClusterStore,
        store: any SnapshotStore, status: ClusterStatus, logger: Logger
    ) {
        self.settings = settings
        self.incarnation = incarnation
        self.hub = hub
        self.link = ClusterLink(nats: nats)
        self.leases = leases
        self.store = store
        self.remotes = RemoteConnections(link: link)
        self.status = status
        self.logger = logger
        (notices, noticeSink) = AsyncStream.makeStream(of: NATSMessage.self)
    }

    private func subscribeStanding() throws(NATSError) {
        var subscriptions = [
            try link.nats.subscribe(Subject.node(settings.nodeID)) { [weak self] message in self?.receiveDelivery(message) }
        ]
        for subject in [Subject.connections, Subject.drivers, Subject.users, Subject.takeovers] {
            subscriptions.append(try link.nats.subscribe(subject) { [noticeSink] message in noticeSink.yield(message) })
        }
        standingSubscriptions.withLock { $0 = subscriptions }
    }

    /// Leaves the cluster: no more messages; the lease runs out and another node takes the
    /// trips over unless this node comes back first (`ClusterDuties`).
    public func stop() {
        noticeSink.finish()
        for subscription in standingSubscriptions.withLock({ $0 }) { subscription.unsubscribe() }
        for subscription in tripSubscriptions.withLock({ $0.values }) { subscription.unsubscribe() }
        link.nats.close()
    }

    /// A request from a connection that closed before it was handled: nobody waits for its answer,
    /// and carrying it out would leave the closed connection in the trip's group.
    static let closed = HubError(.unavailable, "The connection that sent this closed before it was handled.")

    func origin(of mailbox: any Mailbox) -> Origin {
        Origin(node: settings.nodeID, incarnation: incarnation, connection: mailbox.connectionID.rawValue)
    }

    // MARK: ClusterTrips: lists of trips, wherever they live

    /// The store's committed rows: every trip change is committed there before it is acknowledged.
    public func unfinishedTrips(involving userID: Int, includingRequested: Bool) async throws -> [Trip] {
        try await store.unfinishedTrips(involving: userID, includingRequested: includingRequested)
    }

    // MARK: RemoteTrips: this node's clients reaching trips of other nodes

    public func update(trip: UUID, _ update: TripUpdate, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError) -> TripView
    {
        // The driver's own node keeps its "one trip at a time" (the owner of the other trip may
        // be a third node): claimed here before the owner decides, released if it refuses.
        var claimedHere = false
        if sender.group == .driver, update.status?.isActive == true {
            let before = hub.drivers.activeTrip(of: sender.userID)
            guard hub.drivers.claim(trip, for: sender.userID) else {
                throw HubError(.forbidden, "You are driving another trip; finish it before taking this one.")
            }
            claimedHere = before == nil
        }
        do {
            let view = try await ask(trip, .update(update, by: sender, origin: origin(of: mailbox))).view()
            if view.trip.status.isFinished, sender.group == .driver { hub.drivers.clearActiveTrip(trip, of: sender.userID) }
            return view
        } catch {
            if claimedHere { hub.drivers.clearActiveTrip(trip, of: sender.userID) }
            throw error
        }
    }

    public func cancel(trip: UUID, by sender: Principal, from mailbox: any Mailbox) async throws(HubError) -> TripView {
        try await ask(trip, .cancel(by: sender, origin: origin(of: mailbox))).view()
    }

    public func decline(trip: UUID, by sender: Principal, from mailbox: any Mailbox) async throws(HubError) {
        if case .refused(let code, let message) = try await ask(trip, .decline(by: sender, origin: origin(of: mailbox))) {
            throw HubError(HubError.Code(rawValue: code) ?? .invalid, message)
        }
    }

    public func resume(trip: UUID, after lastSeen: Int64, by sender: Principal, from mailbox: any Mailbox) async throws(HubError) {
        if case .refused(let code, let message) = try await ask(trip, .resume(after: lastSeen, by: sender, origin: origin(of: mailbox))) {
            throw HubError(HubError.Code(rawValue: code) ?? .invalid, message)
        }
    }

    public func recordLocation(_ fix: LocationFix, trip: UUID, driverID: Int, from mailbox: any Mailbox) {
        link.publish(Subject.trip(trip), bytes: FixMessage(fix: fix, driverID: driverID, origin: origin(of: mailbox)).encoded(), kind: .location)
    }

    public func connected(_ principal: Principal, mailbox: any Mailbox) {
        guard !(mailbox is RemoteMailbox) else { return }
        locals.withLock { $0[mailbox.connectionID.rawValue] = LocalConnection(mailbox: mailbox, principal: principal) }
        link.publish(Subject.connections, ConnectionNotice(origin: origin(of: mailbox), principal: principal, isOpen: true, sendState: false), kind: .notice)
    }

    public func disconnected(_ principal: Principal, mailbox: any Mailbox) {
        guard !(mailbox is RemoteMailbox) else { return }
        locals.withLock { $0[mailbox.connectionID.rawValue] = nil }
        link.publish(Subject.connections, ConnectionNotice(origin: origin(of: mailbox), principal: principal, isOpen: false, sendState: false), kind: .notice)
    }

    public func opened(trip: UUID) {
        do {
            let subscription = try link.nats.subscribe(Subject.trip(trip)) { [weak self] message in self?.receiveTripMessage(message, trip: trip) }
            let replaced = tripSubscriptions.withLock { $0.updateValue(subscription, forKey: trip) }
            replaced?.unsubscribe()
        } catch {
            logger.error("cannot subscribe to a trip's subject", metadata: ["trip": "\(trip.lowercasedText)", "error": "\(error)"])
        }
    }

    public func evicted(trip: UUID) {
        tripSubscriptions.withLock { $0.removeValue(forKey: trip) }?.unsubscribe()
    }

    /// Sends a command to a trip's owner and waits for its answer. No owner answering means the
    /// trip is not live anywhere (`notFound`: the store has the rest) or its owner is gone and not
    /// yet replaced (`unavailable`). An answer from a run that was taken over is dropped: the trip
    /// has a new owner, asked once more; if the stale run answers first again, `unavailable`.
    private func ask(_ trip: UUID, _ command: TripCommand) async throws(HubError) -> TripReply {
        let answer = try await askOnce(trip, command)
        guard isStale(answer) else { return answer.reply }
        status.staleAnswerDropped()
        try? await Task.sleep(for: .milliseconds(100))
        let again = try await askOnce(trip, command)
        guard isStale(again) else { return again.reply }
        status.staleAnswerDropped()
        throw HubError(.unavailable, "Trip \(trip.lowercasedText) is changing hands between nodes; try again.")
    }

    private func isStale(_ answer: OwnerAnswer) -> Bool {
        retired.isRetired(node: answer.node, incarnation: answer.incarnation)
    }

    private func askOnce(_ trip: UUID, _ command: TripCommand) async throws(HubError) -> OwnerAnswer {
        let answer: NATSMessage
        do {
            do {
                answer = try await link.request(Subject.trip(trip), command, timeout: settings.requestTimeout)
            } catch where error.code == .noResponders {
                // Asked in the moment a trip changes hands (a takeover subscribing): once more.
                try? await Task.sleep(for: .milliseconds(100))
                answer = try await link.request(Subject.trip(trip), command, timeout: settings.requestTimeout)
            }
        } catch {
            status.requestFailed()
            // No owner answers: `not_found` only when the store says so (no such trip, or it is
            // finished); a store that cannot be read decides nothing.
            if error.code == .noResponders, await storeSaysGone(trip) {
                throw HubError(.notFound, "Trip \(trip.lowercasedText) does not exist.")
            }
            throw HubError(.unavailable, "The node that holds trip \(trip.lowercasedText) cannot be reached now; another node takes it over within seconds. Try again.")
        }
        guard let owned = ClusterCoding.decode(OwnerAnswer.self, from: answer.payload) else {
            throw HubError(.unavailable, "The node that holds trip \(trip.lowercasedText) sent an answer this node cannot read.")
        }
        return owned
    }

    /// True when the store has no such trip, or has it finished; false when it has it live, or
    /// cannot be read.
    private func storeSaysGone(_ trip: UUID) async -> Bool {
        do {
            return try await store.trip(id: trip)?.status.isFinished ?? true
        } catch {
            return false
        }
    }

    // MARK: Inbound: other nodes reaching this node

    /// A command for a trip this node owns. Past its local lease deadline a node is no owner: it
    /// takes nothing in and answers nothing (the requester times out and answers `unavailable`),
    /// in the moments between a resume from a pause and its watchdog stopping it.
    private func receiveTripMessage(_ message: NATSMessage, trip: UUID) {
        guard localLeaseRemaining > .zero else { return }
        if message.payload.first == FixMessage.tag, let fix = FixMessage(message.payload) {
            link.received(message, kind: .location)
            recordRemoteFix(fix.fix, trip: trip, driverID: fix.driverID, origin: fix.origin)
            return
        }
        guard let command = link.decode(TripCommand.self, from: message, kind: .command) else {
            logger.warning("unreadable trip command", metadata: ["subject": "\(message.subject)"])
            return
        }
        Task {
            let reply: TripReply
            do throws(HubError) {
                switch command {
                case .update(let update, let principal, let origin):
                    guard let mailbox = remotes.mailbox(for: origin, principal: principal) else { throw Self.closed }
                    reply = .trip(try await hub.updateTrip(id: trip, update, by: principal, from: mailbox))
                    mailbox.joined([trip])
                case .cancel(let principal, let origin):
                    guard let mailbox = remotes.mailbox(for: origin, principal: principal) else { throw Self.closed }
                    reply = .trip(try await hub.cancelTrip(id: trip, by: principal, from: mailbox))
                    mailbox.joined([trip])
                case .resume(let lastSeen, let principal, let origin):
                    guard let mailbox = remotes.mailbox(for: origin, principal: principal) else { throw Self.closed }
                    _ = try await hub.resume(tripID: trip, after: lastSeen, by: principal, from: mailbox)
                    mailbox.joined([trip])
                    reply = .resumed
                case .decline(let principal, let origin):
                    guard let mailbox = remotes.mailbox(for: origin, principal: principal) else { throw Self.closed }
                    try await hub.declineTrip(id: trip, by: principal, from: mailbox)
                    reply = .resumed
                }
            } catch {
                reply = TripReply(error)
            }
            guard localLeaseRemaining > .zero else { return }
            link.respond(to: message, OwnerAnswer(node: settings.nodeID, incarnation: incarnation, reply: reply))
        }
    }

    /// Records a fix sent by a driver on another node, in the order that node sent them: handed
    /// to the trip as a local socket's fixes are (`Hub.recordRemoteFix`).
    private func recordRemoteFix(_ fix: LocationFix, trip: UUID, driverID: Int, origin: Origin) {
        // The driver's own connection, when it is in the group, is not sent its own fix back.
        let sender = remotes.existing(origin)?.connectionID ?? ConnectionID(RemoteMailbox.idBit)
        let receipt = hub.recordRemoteFix(fix, trip: trip, driverID: driverID, via: sender)
        if receipt.recordsOnSettle { Task { await receipt.settle() } }
    }

    /// Events from a trip's owner for one of this node's sockets.
    private func receiveDelivery(_ message: NATSMessage) {
        guard let delivery = link.decode(Delivery.self, from: message, kind: .event) else {
            logger.warning("unreadable delivery", metadata: ["subject": "\(message.subject)"])
            return
        }
        guard let local = locals.withLock({ $0[delivery.connection] }) else { return }
        if local.principal.group == .driver {
            // This node's driver map keeps its drivers' trips, wherever they are owned: a busy
            // driver is not offered trips, and its fixes go to the trip's owner. Updated before
            // the driver reads the event, so its next request already finds it free or busy.
            for case .trip(let view) in delivery.events where view.trip.driverID == local.principal.userID {
                if view.trip.status.isActive {
                    _ = hub.drivers.claim(view.trip.id, for: local.principal.userID)
                } else if view.trip.status.isFinished {
                    hub.drivers.clearActiveTrip(view.trip.id, of: local.principal.userID)
                }
            }
        }
        if delivery.isReplay {
            local.mailbox.replay(delivery.events)
        } else {
            for event in delivery.events { local.mailbox.deliver(event) }
        }
        if let end = delivery.resumeEnded {
            local.mailbox.resumeEnded(trip: end.trip, through: end.through)
        }
    }

    /// Records the incarnation a notice came from; true when the node was known under another
    /// (it restarted: its earlier connections are gone).
    func noteIncarnation(_ origin: Origin) -> Bool {
        incarnations.withLock { known in
            defer { known[origin.node] = origin.incarnation }
            return known[origin.node].map { $0 != origin.incarnation } ?? false
        }
    }

    /// This node's sockets whose user is one of `users`.
    func localConnections(of users: Set<Int>) -> [LocalConnection] {
        locals.withLock { $0.values.filter { users.contains($0.principal.userID) } }
    }
}
