import Foundation
import Synchronization

/// The registry of live state: finds trip actors, holds the driver map and the user
/// directory, and runs the flows that span several actors (create, update, cancel, decline,
/// locations, connect, resume, and the dispatch tick that moves waiting trips' offers on).
///
/// Trip look-ups go through sharded locks held only for a dictionary access, so the hot
/// path never queues behind one global lock or actor.
public final class Hub: Sendable {
    /// How the hub dispatches and how much it remembers per trip.
    public struct Settings: Sendable {
        /// The search of each offer round: its first radius, largest radius and drivers per round.
        public var dispatch = DispatchPolicy()
        /// Offer rounds: the radius step, offer and dispatch time-outs, stale positions.
        public var offers = OfferPolicy()
        /// The ETA of offers and of a driver on its way.
        public var eta = ETAModel()
        /// Arrival notices and the pick-up radius of `IN_PROGRESS`.
        public var pickUp = PickUpPolicy()
        public var grid = CellGrid()
        /// Events per trip kept for `resume`.
        public var historyLength = 256
        /// A bug planted on purpose by the simulator's planted-bug test; nil in the product.
        @_spi(Simulation) public var plantedBug: PlantedBug?

        public init() {}
    }

    public let users: UserDirectory
    public let index: TripIndex
    public let changes: ChangeTracker
    public let drivers: DriverMap
    /// Where trip changes and sign-ups become durable before anyone hears of them.
    public let commitLog: any CommitLog
    public let settings: Settings
    /// Where the hub reads the time.
    public let clock: any HubClock
    /// Requests that ended without a driver (the operators' supply and demand).
    public let dispatchOutcomes = DispatchOutcomes()
    /// Makes the id of each new trip.
    private let newTripID: @Sendable () -> UUID
    /// Where trip actors run; nil: each on a queue of its own.
    private let executors: (any TripExecutors)?
    private let shards: [TripShard]
    /// The other nodes of a cluster; nil on a single hub (set once, before serving).
    private let remote = Mutex<(any RemoteTrips)?>(nil)

    /// - Parameters:
    ///   - clock: where time stamps and the age check of fixes read the time.
    ///   - newTripID: the id of each new trip (random UUIDs; the simulator derives them from its seed).
    ///   - commitLog: makes trip changes and sign-ups durable before they are acknowledged; the
    ///     default keeps nothing (every change counts as durable at once).
    public init(
        changes: ChangeTracker = ChangeTracker(), commitLog: any CommitLog = ImmediateCommitLog(), settings: Settings = Settings(),
        executors: (any TripExecutors)? = nil, shardCount: Int = 16, clock: any HubClock = WallClock(),
        newTripID: @escaping @Sendable () -> UUID = { UUID() }
    ) {
        self.changes = changes
        self.commitLog = commitLog
        self.settings = settings
        self.clock = clock
        self.newTripID = newTripID
        self.executors = executors
        self.users = UserDirectory(changes: changes, commitLog: commitLog)
        self.index = TripIndex()
        self.drivers = DriverMap(grid: settings.grid, staleAfter: settings.offers.stalePositionAfter)
        self.shards = (0..<max(1, shardCount)).map { _ in TripShard() }
    }

    /// Makes this hub one node of a cluster: trips it does not own are reached through `remote`.
    /// Call once, before serving; it is told of every live trip the hub owns already.
    public func attach(_ remote: any RemoteTrips) {
        self.remote.withLock { $0 = remote }
        for trip in index.latestTrips() where tripActor(id: trip.id) != nil {
            remote.opened(trip: trip.id)
        }
    }

    /// The cluster this hub is a node of; nil on a single hub.
    private var cluster: (any RemoteTrips)? {
        remote.withLock { $0 }
    }

    /// Rebuilds live state from the store at start (or when a hub takes over another's trips);
    /// nothing restored counts as changed.
    ///
    /// Each restored trip's `seq` goes on from `restartSeq(of:track:)`, never from the stored
    /// `seq` alone: see there why.
    public func restore(users: [User], trips: [Trip], tracks: [UUID: [TrackPoint]] = [:]) {
        self.users.restore(users)
        for var trip in trips where !trip.status.isFinished {
            let track = tracks[trip.id] ?? []
            trip.seq = restartSeq(of: trip, track: track)
            register(trip, track: track, openedBy: nil, createdAt: nil)
            if trip.status.isActive, let driver = trip.driverID {
                _ = drivers.claim(trip.id, for: driver)
            }
        }
    }

    /// The `seq` a restored trip goes on from: the largest of its stored `seq`, its newest
    /// stored track point's (a location is stored as a track point only, not as a new trip row)
    /// and the hub's clock in microseconds since 1970.
    ///
    /// The stored values alone are not enough: changes acknowledged after the last snapshot are
    /// lost in a crash, and clients saw their `seq`s. Going on from the store would number new,
    /// different events with `seq`s clients already hold, and they would drop them as
    /// duplicates (state changes too), while a `resume` from beyond the stored `seq` would
    /// replay nothing. The clock fixes that without storing anything more: a trip emits far
    /// fewer than one event per microsecond (state changes need a round trip each, locations
    /// are rate-limited per socket), so every `seq` issued before the crash, counted up from the
    /// previous restart's clock (or from 1), is below this restart's clock in microseconds. That
    /// holds again after every further crash. It assumes only that the clock of the restarting
    /// hub is not behind the crashed hub's by more than the time since the trip's previous
    /// restore; values stay below 2^53 (exact in JavaScript) until the year 2255.
    func restartSeq(of trip: Trip, track: [TrackPoint]) -> Int64 {
        max(trip.seq, track.last?.seq ?? 0, clock.now().microseconds)
    }

    /// The actor of a live trip.
    public func tripActor(id: UUID) -> TripActor? {
        shard(for: id).actors.withLock { $0[id] }
    }

    /// Joins a new connection to its groups: drivers to the driver map, everyone to each
    /// unfinished trip it takes part in. Returns the trips joined.
    ///
    /// An available driver also takes up the offers of the waiting trips without a pick-up point,
    /// without being sent them: it lists them over REST (`GET /api/trip/`) as it connects, as the
    /// reference's dashboard does, and holding their offers it hears when each is taken, canceled or
    /// ends without a driver, so its list never keeps a trip that is gone. Trips with a pick-up
    /// point need its position: the first dispatch tick after its first fix offers them.
    public func connect(_ principal: Principal, mailbox: any Mailbox) async -> Set<UUID> {
        if principal.group == .driver {
            // Hidden from offer rounds until it holds those offers, so no tick sends it one first.
            drivers.join(mailbox, driverID: principal.userID, hidden: true)
        }
        let joined = await joinTrips(of: principal, mailbox: mailbox)
        cluster?.connected(principal, mailbox: mailbox)
        if principal.group == .driver {
            for id in index.waitingTrips(withPickUp: false) {
                await tripActor(id: id)?.holdOffer(for: mailbox, driverID: principal.userID)
            }
            drivers.reveal(mailbox.connectionID)
        }
        return joined
    }

    /// One dispatch tick at the hub's clock: every trip of this hub that waits for a driver moves
    /// its offer rounds on (`TripActor.dispatchTick`): offers that expired or whose driver is no
    /// longer available are withdrawn, the next round starts where one ended, late drivers are
    /// offered the trip, and a trip past `dispatchTimeout` ends without a driver. The server calls
    /// it about twice a second (`DispatchService`), the simulator at its steps.
    ///
    /// With `TripExecutors`, each trip's tick is a plain job queued on the trip's executor (as a
    /// GPS fix is), all at once, so trips on different event loops tick side by side and nothing
    /// waits for them; returns once they are queued. Without, the trips tick one after another, in
    /// id order, and it returns once all did (tests on a manual clock).
    public func dispatchTick() async {
        await tick(index.waitingTrips())
    }

    /// Offers the waiting trips without a pick-up point to whoever became available for them.
    private func offerWaitingTripsWithoutPickUp() async {
        await tick(index.waitingTrips(withPickUp: false))
    }

    private func tick(_ trips: [UUID]) async {
        for id in trips {
            guard let trip = tripActor(id: id) else { continue }
            if let jobs = trip.jobs {
                // No job of the actor runs meanwhile: it runs as a whole job of its own executor.
                jobs.enqueue { trip.assumeIsolated { $0.dispatchTick() } }
            } else {
                await trip.dispatchTick()
            }
        }
    }

    /// A driver declines its live offer of a trip (`decline.trip`): the offer ends and the trip
    /// moves on at once. Refused, changing nothing, unless the sender is a driver holding a live
    /// offer of it (`no_offer`; `forbidden` for a rider or an operator; `not_found` for no live trip).
    public func declineTrip(id: UUID, by sender: Principal, from mailbox: any Mailbox) async throws(HubError) {
        guard sender.group == .driver else {
            throw HubError(.forbidden, "Only drivers decline offers.")
        }
        if let actor = tripActor(id: id) {
            try await actor.decline(by: sender, from: mailbox)
            return
        }
        guard let cluster else { throw Self.notFound(id) }
        try await cluster.decline(trip: id, by: sender, from: mailbox)
    }

    /// A driver goes offline (a break: no offers, its trip goes on as before) or back online
    /// (`update.availability`). Going offline takes effect for new offers at once; the offers it
    /// holds are withdrawn at the next dispatch tick. Back online, it is offered the waiting trips
    /// without a pick-up point at once, the others at the next tick (with a fresh fix). Returns
    /// whether the driver is online now.
    @discardableResult
    public func setAvailability(online: Bool, by sender: Principal) async throws(HubError) -> Bool {
        guard sender.group == .driver else {
            throw HubError(.forbidden, "Only drivers go online or offline.")
        }
        guard drivers.setOnline(online, driverID: sender.userID) else {
            throw HubError(.invalid, "This driver has no connection to the hub.")
        }
        if online { await offerWaitingTripsWithoutPickUp() }
        return online
    }

    /// Joins a connection to each unfinished trip of this hub its user takes part in (the part of
    /// `connect` that a cluster also runs for connections on other nodes). With `sendingState`,
    /// each trip joined sends it its current state. Returns the trips joined.
    public func joinTrips(of principal: Principal, mailbox: any Mailbox, sendingState: Bool = false) async -> Set<UUID> {
        var joined: Set<UUID> = []
        // In id order (here and in `disconnect`), not a set's: the order of the actor hops is then
        // the same in every process, so the simulator replays a schedule from its seed.
        for trip in index.latestTrips(involving: principal.userID).sorted(by: { $0.id < $1.id }) where !trip.status.isFinished {
            guard let actor = tripActor(id: trip.id) else { continue }
            await actor.join(mailbox, sendingState: sendingState)
            joined.insert(trip.id)
        }
        return joined
    }

    /// Removes a closed connection from every group it was in and every offer list it is on.
    public func disconnect(_ principal: Principal, mailbox: any Mailbox, joined: Set<UUID>) async {
        var trips = joined
        if principal.group == .driver {
            trips.formUnion(drivers.leave(mailbox.connectionID))
        }
        for id in trips.sorted() {
            await tripActor(id: id)?.leave(mailbox.connectionID)
        }
        cluster?.disconnected(principal, mailbox: mailbox)
    }

    /// Creates a `REQUESTED` trip for the sending rider, joins the sender to its group,
    /// sends it the trip and alerts the available drivers, nearest first. Returns once the trip
    /// is durable (its events go out then too); throws `unavailable` when it could not be made so.
    public func createTrip(_ request: TripRequest, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError) -> TripView
    {
        let trip = try TripRules.newTrip(request, by: sender, id: newTripID(), at: clock.now())
        // Recorded and logged before the trip can be found, so a racing accept's record is always
        // the later one.
        changes.record(trip)
        let position = commitLog.append(.trip(trip))
        let actor = register(trip, track: [], openedBy: mailbox, createdAt: position)
        // One hop to the actor, not three: under load each hop waits a full turn of the event loop.
        await actor.open(creator: mailbox)
        try await commitLog.waitUntilDurable(position)
        // The trip as created, not the actor's state by now: a change that reached it first
        // may not be durable yet.
        return users.view(of: trip)
    }

    /// Applies a client's update to a live trip; returns once the change is durable.
    public func updateTrip(id: UUID, _ update: TripUpdate, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError) -> TripView
    {
        if let actor = tripActor(id: id) {
            return try await acknowledged { () throws(TripActor.Refusal) in try await actor.update(update, by: sender, from: mailbox) }
        }
        guard let cluster else { throw Self.notFound(id) }
        return try await cluster.update(trip: id, update, by: sender, from: mailbox)
    }

    /// Cancels a live trip for its rider; returns once the cancel is durable. The sender's
    /// connection joins the trip's group first (it normally is a member already), so the event
    /// that answers the cancel reaches it.
    public func cancelTrip(id: UUID, by sender: Principal, from mailbox: any Mailbox) async throws(HubError) -> TripView {
        if let actor = tripActor(id: id) {
            return try await acknowledged { () throws(TripActor.Refusal) in try await actor.cancel(by: sender, from: mailbox) }
        }
        guard let cluster else { throw Self.notFound(id) }
        return try await cluster.cancel(trip: id, by: sender, from: mailbox)
    }

    /// A driver's GPS fix, the one way in for every fix (sockets, the simulator, tests and
    /// benchmarks): checks it, moves the driver on the map, records its position for the store
    /// and, while it drives a trip, hands it to the trip (its track and the group's
    /// `trip.location`). A trip another node owns gets it from there (`RemoteTrips`).
    ///
    /// Never suspends. The trip records the fix at once when the caller runs on the trip's
    /// executor (the server reads a rider's and driver's messages on the trip's event loop), else
    /// as a job queued there; the receipt says which. Settle it before the connection's next
    /// request that awaits an actor (`FixReceipt`).
    public func recordFix(_ fix: LocationFix, by sender: Principal, from mailbox: any Mailbox) throws(HubError) -> FixReceipt {
        guard sender.group == .driver else {
            throw HubError(.forbidden, "Only drivers send locations.")
        }
        try LocationRules.validate(fix, now: clock.now())
        let activeTrip = drivers.move(mailbox.connectionID, to: fix.point, at: clock.now())
        changes.record(DriverPosition(driverID: sender.userID, fix: fix))
        guard let activeTrip else { return .settled }
        guard let trip = tripActor(id: activeTrip) else {
            // Only in a cluster can a driver drive a trip this hub does not hold: its owner records it.
            cluster?.recordLocation(fix, trip: activeTrip, driverID: sender.userID, from: mailbox)
            return .settled
        }
        return hand(fix, to: trip, driverID: sender.userID, via: mailbox.connectionID)
    }

    /// A fix that a driver on another node sent for a trip this node owns: handed to the trip in
    /// the order that node sent them, as `recordFix` hands a local driver's. The driver's
    /// connection there (`sender`) is not sent its own fix back.
    @discardableResult
    public func recordRemoteFix(_ fix: LocationFix, trip id: UUID, driverID: Int, via sender: ConnectionID) -> FixReceipt {
        guard let trip = tripActor(id: id) else { return .settled }
        return hand(fix, to: trip, driverID: driverID, via: sender)
    }

    /// Has `trip` record a fix: inline when the caller runs on the trip's executor, else as a
    /// job queued there, else (a hub without `TripExecutors`) left for the receipt's `settle`.
    private func hand(_ fix: LocationFix, to trip: TripActor, driverID: Int, via sender: ConnectionID) -> FixReceipt {
        guard let jobs = trip.jobs else { return FixReceipt(pending: .unrecorded(trip, fix, driverID: driverID, via: sender)) }
        let via = settings.plantedBug == .fixEchoedToSender ? ConnectionID(0) : sender
        if jobs.isCurrent {
            // No job of the actor runs meanwhile: its methods never suspend, and each runs as a
            // whole job of this same executor.
            trip.assumeIsolated { _ = $0.recordLocation(fix, from: driverID, via: via) }
            return .settled
        }
        jobs.enqueue { trip.assumeIsolated { _ = $0.recordLocation(fix, from: driverID, via: via) } }
        return FixReceipt(pending: .queued(jobs))
    }

    /// Replays to a reconnected client what it missed of a live trip of this hub after `lastSeen`.
    public func resume(tripID: UUID, after lastSeen: Int64, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError) -> TripActor.ResumeReply
    {
        guard let actor = tripActor(id: tripID) else { throw Self.notFound(tripID) }
        return try await actor.resume(mailbox, by: sender, after: lastSeen)
    }

    /// `resume`, for a trip of this hub or, in a cluster, of the node that owns it: either way
    /// the events reach the mailbox.
    public func resumeAnywhere(tripID: UUID, after lastSeen: Int64, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError)
    {
        if let actor = tripActor(id: tripID) {
            _ = try await actor.resume(mailbox, by: sender, after: lastSeen)
            return
        }
        guard let cluster else { throw Self.notFound(tripID) }
        try await cluster.resume(trip: tripID, after: lastSeen, by: sender, from: mailbox)
    }

    /// Drops finished trips from memory once the store holds their final state.
    public func evictPersisted(_ trips: some Sequence<Trip>) {
        for trip in trips where trip.status.isFinished {
            shard(for: trip.id).actors.withLock { $0[trip.id] = nil }
            index.remove(trip.id)
            cluster?.evicted(trip: trip.id)
        }
    }

    /// Runs an actor's decision and answers it only once what it rests on is durable: the change
    /// it made, or, for a refusal, the state it was judged against.
    private func acknowledged(
        _ decide: () async throws(TripActor.Refusal) -> TripActor.Change
    ) async throws(HubError) -> TripView {
        let change: TripActor.Change
        do throws(TripActor.Refusal) {
            change = try await decide()
        } catch {
            try await commitLog.waitUntilDurable(error.position)
            throw error.error
        }
        try await commitLog.waitUntilDurable(change.position)
        return change.view
    }

    static func notFound(_ id: UUID) -> HubError {
        HubError(.notFound, "Trip \(id.lowercasedText) does not exist.")
    }

    @discardableResult
    private func register(_ trip: Trip, track: [TrackPoint], openedBy creator: (any Mailbox)?, createdAt: CommitPosition?) -> TripActor {
        let actor = TripActor(
            trip: trip, track: track, historyLength: settings.historyLength, clock: clock,
            plantedBug: settings.plantedBug, placement: executors?.placement(forTripOpenedBy: creator),
            commitLog: commitLog, createdAt: createdAt,
            users: users, index: index, changes: changes, drivers: drivers,
            dispatch: DispatchSettings(
                search: settings.dispatch, offers: settings.offers, eta: settings.eta, pickUp: settings.pickUp, outcomes: dispatchOutcomes
            )
        )
        shard(for: trip.id).actors.withLock { $0[trip.id] = actor }
        index.upsert(trip)
        // A restored trip is durable already; a new one is released with its first event.
        if createdAt == nil { index.release(trip) }
        // Before the trip's first event, so a reply from another node cannot beat the owner's ear.
        cluster?.opened(trip: trip.id)
        return actor
    }

    private func shard(for id: UUID) -> TripShard {
        shards[Int(UInt(bitPattern: id.hashValue) % UInt(shards.count))]
    }
}

/// One slice of the trip registry.
private final class TripShard: Sendable {
    let actors = Mutex<[UUID: TripActor]>([:])
}
