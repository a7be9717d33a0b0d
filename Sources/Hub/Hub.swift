import Foundation
import Synchronization

/// The registry of live state: finds trip actors, holds the driver map and the user
/// directory, and runs the flows that span several actors (create, update, cancel, locations,
/// connect, resume).
///
/// Trip look-ups go through sharded locks held only for a dictionary access, so the hot
/// path never queues behind one global lock or actor.
public final class Hub: Sendable {
    /// How the hub dispatches and how much it remembers per trip.
    public struct Settings: Sendable {
        public var dispatch = DispatchPolicy()
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
    public let settings: Settings
    /// Where the hub reads the time.
    public let clock: any HubClock
    /// Makes the id of each new trip.
    private let newTripID: @Sendable () -> UUID
    /// Where trip actors run; nil: each on a queue of its own.
    private let executors: (any TripExecutors)?
    private let shards: [TripShard]

    /// - Parameters:
    ///   - clock: where time stamps and the age check of fixes read the time.
    ///   - newTripID: the id of each new trip (random UUIDs; the simulator derives them from its seed).
    public init(
        changes: ChangeTracker = ChangeTracker(), settings: Settings = Settings(), executors: (any TripExecutors)? = nil,
        shardCount: Int = 16, clock: any HubClock = WallClock(), newTripID: @escaping @Sendable () -> UUID = { UUID() }
    ) {
        self.changes = changes
        self.settings = settings
        self.clock = clock
        self.newTripID = newTripID
        self.executors = executors
        self.users = UserDirectory(changes: changes)
        self.index = TripIndex()
        self.drivers = DriverMap(grid: settings.grid)
        self.shards = (0..<max(1, shardCount)).map { _ in TripShard() }
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
            register(trip, track: track, openedBy: nil)
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
    public func connect(_ principal: Principal, mailbox: any Mailbox) async -> Set<UUID> {
        if principal.group == .driver {
            drivers.join(mailbox, driverID: principal.userID)
        }
        var joined: Set<UUID> = []
        // In id order (here and in `disconnect`), not a set's: the order of the actor hops is then
        // the same in every process, so the simulator replays a schedule from its seed.
        for trip in index.trips(involving: principal.userID).sorted(by: { $0.id < $1.id }) where !trip.status.isFinished {
            guard let actor = tripActor(id: trip.id) else { continue }
            await actor.join(mailbox)
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
    }

    /// Creates a `REQUESTED` trip for the sending rider, joins the sender to its group,
    /// sends it the trip and alerts the available drivers, nearest first.
    public func createTrip(_ request: TripRequest, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError) -> TripView
    {
        let trip = try TripRules.newTrip(request, by: sender, id: newTripID(), at: clock.now())
        // Recorded before the trip can be found, so a racing accept's record is always the later one.
        changes.record(trip)
        let actor = register(trip, track: [], openedBy: mailbox)
        let alerted = drivers.driversToAlert(for: trip.id, near: trip.pickUpLocation, policy: settings.dispatch)
        // One hop to the actor, not three: under load each hop waits a full turn of the event loop.
        return await actor.open(creator: mailbox, alerting: alerted)
    }

    /// Applies a client's update to a live trip.
    public func updateTrip(id: UUID, _ update: TripUpdate, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError) -> TripView
    {
        try await liveTrip(id).update(update, by: sender, from: mailbox)
    }

    /// Cancels a live trip for its rider.
    public func cancelTrip(id: UUID, by sender: Principal) async throws(HubError) -> TripView {
        try await liveTrip(id).cancel(by: sender)
    }

    /// Records a driver's GPS fix: its place in the driver map, its last position for the store,
    /// and, while it drives a trip, the trip's track and the group's `trip.location`.
    public func updateLocation(_ fix: LocationFix, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError)
    {
        if let trip = try moveDriver(fix, by: sender, from: mailbox) {
            _ = await trip.recordLocation(fix, from: sender.userID, via: mailbox.connectionID)
        }
    }

    /// The part of `updateLocation` that needs no actor: checks the fix, moves the driver on the
    /// map and records its position. Returns the actor of the trip the driver drives, which the
    /// caller then has record the fix (`TripActor.recordLocation`); nil when it drives none.
    public func moveDriver(_ fix: LocationFix, by sender: Principal, from mailbox: any Mailbox)
        throws(HubError) -> TripActor?
    {
        guard sender.group == .driver else {
            throw HubError(.forbidden, "Only drivers send locations.")
        }
        try LocationRules.validate(fix, now: clock.now())
        let activeTrip = drivers.move(mailbox.connectionID, to: fix.point)
        changes.record(DriverPosition(driverID: sender.userID, fix: fix))
        return activeTrip.flatMap(tripActor(id:))
    }

    /// Replays to a reconnected client what it missed of a live trip after `lastSeen`.
    public func resume(tripID: UUID, after lastSeen: Int64, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError) -> TripActor.ResumeReply
    {
        try await liveTrip(tripID).resume(mailbox, by: sender, after: lastSeen)
    }

    /// Drops finished trips from memory once the store holds their final state.
    public func evictPersisted(_ trips: some Sequence<Trip>) {
        for trip in trips where trip.status.isFinished {
            shard(for: trip.id).actors.withLock { $0[trip.id] = nil }
            index.remove(trip.id)
        }
    }

    private func liveTrip(_ id: UUID) throws(HubError) -> TripActor {
        guard let actor = tripActor(id: id) else {
            throw HubError(.notFound, "Trip \(id.lowercasedText) does not exist.")
        }
        return actor
    }

    @discardableResult
    private func register(_ trip: Trip, track: [TrackPoint], openedBy creator: (any Mailbox)?) -> TripActor {
        let actor = TripActor(
            trip: trip, track: track, historyLength: settings.historyLength, clock: clock,
            plantedBug: settings.plantedBug, executor: executors?.executor(forTripOpenedBy: creator),
            users: users, index: index, changes: changes, drivers: drivers
        )
        shard(for: trip.id).actors.withLock { $0[trip.id] = actor }
        index.upsert(trip)
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
