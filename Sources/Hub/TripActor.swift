import Foundation

/// Owns one live trip: its state, its track, the latest events, the connections in its group,
/// and the drivers it was offered to. Every change goes through here, so concurrent accepts are
/// ordered and exactly one driver wins, and every event gets the next `seq`. Fan-out only
/// enqueues into mailboxes; it never suspends, and neither does any method here, so each call
/// runs to its end once started.
public actor TripActor {
    /// Where the actor's jobs run (SE-0392): an executor the hub was given, or the queue of a
    /// default actor of its own, which it shares.
    private enum Queue: Sendable {
        case given(any SerialExecutor)
        case own(OwnQueue)
    }

    private nonisolated let queue: Queue

    /// The serial executor this actor runs on when the hub was given `TripExecutors`; nil when it
    /// runs on a queue of its own. Code already running on that executor may call the actor
    /// synchronously (`assumeIsolated`), without a task.
    public nonisolated var executor: (any SerialExecutor)? {
        guard case .given(let executor) = queue else { return nil }
        return executor
    }

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        switch queue {
        case .given(let executor): executor.asUnownedSerialExecutor()
        case .own(let queue): queue.unownedExecutor
        }
    }

    /// A connection in the trip's group, and the trip's `seq` when it joined: events up to that
    /// one happened before it was there, so only they are `resume`'s to replay.
    private struct Member {
        let mailbox: any Mailbox
        var replayableThrough: Int64?
    }

    private var trip: Trip
    /// The `seq` of the trip's current state: of its creation, its latest state change, or its
    /// restore. `trip.seq` also counts locations; a current state `resume` sends carries this one,
    /// so a `seq` always names the same event (see `resume`).
    private var stateSeq: Int64
    private var track: [TrackPoint]
    private var history: EventHistory
    private var members: [ConnectionID: Member] = [:]
    private var offeredTo: [ConnectionID: any Mailbox] = [:]
    private let users: UserDirectory
    private let index: TripIndex
    private let changes: ChangeTracker
    private let drivers: DriverMap
    private let clock: any HubClock
    private let plantedBug: PlantedBug?

    init(
        trip: Trip, track: [TrackPoint], historyLength: Int, clock: any HubClock, plantedBug: PlantedBug?,
        executor: (any SerialExecutor)?,
        users: UserDirectory, index: TripIndex, changes: ChangeTracker, drivers: DriverMap
    ) {
        self.queue = executor.map(Queue.given) ?? .own(OwnQueue())
        self.trip = trip
        self.stateSeq = trip.seq
        self.track = track
        self.history = EventHistory(capacity: historyLength)
        self.users = users
        self.index = index
        self.changes = changes
        self.drivers = drivers
        self.clock = clock
        self.plantedBug = plantedBug
    }

    public var current: Trip { trip }

    public var view: TripView {
        users.view(of: trip)
    }

    public var memberCount: Int { members.count }

    /// The recorded GPS track, ascending `seq`.
    public var trackPoints: [TrackPoint] { track }

    /// Adds a connection to the group; with `sendingState`, it also gets the trip's current
    /// state (a cluster node that took the trip over tells connections of other nodes where it is).
    func join(_ mailbox: any Mailbox, sendingState: Bool = false) {
        guard members[mailbox.connectionID] == nil else { return }
        members[mailbox.connectionID] = Member(mailbox: mailbox, replayableThrough: trip.seq)
        if sendingState { mailbox.replay([.trip(currentStateView)]) }
    }

    func leave(_ connection: ConnectionID) {
        members[connection] = nil
        offeredTo[connection] = nil
    }

    /// Opens a new trip in one step: joins the rider who created it and sends it the trip,
    /// then alerts `drivers` (nearest first). Returns the trip as the rider got it.
    func open(creator: any Mailbox, alerting drivers: [any Mailbox]) -> TripView {
        members[creator.connectionID] = Member(mailbox: creator, replayableThrough: nil)
        let view = self.view
        emit(.trip(view), toOffered: false)
        offer(to: drivers, view)
        return view
    }

    /// Alerts drivers of a trip that still waits for one, and remembers them so they learn when
    /// it is taken or canceled.
    private func offer(to drivers: [any Mailbox], _ view: TripView) {
        guard trip.status == .requested else { return }
        let event = HubEvent.trip(view)
        for driver in drivers where members[driver.connectionID] == nil {
            offeredTo[driver.connectionID] = driver
            driver.deliver(event)
        }
    }

    /// Validates and applies an update; on success the sender joins the group and everyone
    /// in it gets the new state once, and drivers the trip was offered to learn it left `REQUESTED`.
    func update(_ update: TripUpdate, by sender: Principal, from mailbox: any Mailbox) throws(HubError) -> TripView {
        let next = try TripRules.apply(update, by: sender, to: stateToCheck(for: update), at: clock.now())
        // A driver takes one trip at a time: the claim is atomic across all trip actors.
        if next.status.isActive, !drivers.claim(trip.id, for: sender.userID) {
            throw HubError(.forbidden, "You are driving another trip; finish it before taking this one.")
        }
        join(mailbox)
        return commit(next)
    }

    /// Cancels the trip for its rider; the group and every driver it was offered to learn it.
    func cancel(by sender: Principal) throws(HubError) -> TripView {
        commit(try TripRules.cancel(trip, by: sender, at: clock.now()))
    }

    /// The state `update` is checked against: the trip, unless the simulator planted
    /// `acceptSkipsStatusCheck`, which checks an accept against the trip as if it still waited.
    private func stateToCheck(for update: TripUpdate) -> Trip {
        guard plantedBug == .acceptSkipsStatusCheck, update.status == .started else { return trip }
        var waiting = trip
        waiting.status = .requested
        waiting.driverID = nil
        return waiting
    }

    /// Records a location of the trip's driver while the trip is active: it gets the next `seq`,
    /// joins the track and reaches the group except the connection that sent it. Returns false
    /// (and changes nothing) otherwise.
    public func recordLocation(_ fix: LocationFix, from driverID: Int, via sender: ConnectionID) -> Bool {
        guard trip.status.isActive, trip.driverID == driverID else { return false }
        trip.seq += 1
        let point = TrackPoint(tripID: trip.id, seq: trip.seq, fix: fix)
        track.append(point)
        // The point alone: the trip row stays as it was (a restart takes `seq` from the track),
        // so a snapshot writes one row per location, not a trip row per moving trip too.
        changes.record(point)
        emit(.location(TripLocation(tripID: trip.id, driverID: driverID, fix: fix, seq: trip.seq)), toOffered: false, except: sender)
        return true
    }

    /// What `resume` sends one connection for this trip.
    public enum ResumeReply: Sendable, Equatable {
        /// The events it missed, oldest first (possibly none).
        case replay([HubEvent])
        /// The history no longer reaches back: the trip's current state instead.
        case currentState(HubEvent)
    }

    /// The events of this trip a reconnecting client missed after `lastSeen`, up to the moment
    /// it joined the group again; what came later it received live. Each connection gets its
    /// replay once. Only the trip's rider and driver may resume it.
    ///
    /// When the history no longer reaches back (or the trip was restored after a crash, whose
    /// history starts anew), the client gets the trip's current state instead, as a replayed
    /// event: it may follow live events with a higher `seq`, as a replay may. It carries the `seq`
    /// of that state (`stateSeq`), not `trip.seq`, which may be a location's: clients keep the
    /// `seq`s they saw and drop an event whose `seq` they hold, so a state under a location's
    /// `seq` would be dropped by a client that got that location live. When the state is newer
    /// than the join, the connection already got it live and it is not sent again.
    func resume(_ mailbox: any Mailbox, by sender: Principal, after lastSeen: Int64) throws(HubError) -> ResumeReply {
        guard trip.riderID == sender.userID || trip.driverID == sender.userID else {
            throw HubError(.forbidden, "Only the trip's rider and driver can resume it.")
        }
        join(mailbox)
        let through = members[mailbox.connectionID]?.replayableThrough
        members[mailbox.connectionID]?.replayableThrough = nil
        guard let through, lastSeen < through else { return .replay([]) }
        if let missed = history.events(in: (max(lastSeen, 0) + 1)...through) {
            mailbox.replay(missed)
            return .replay(missed)
        }
        let state = HubEvent.trip(currentStateView)
        if stateSeq <= through { mailbox.replay([state]) }
        return .currentState(state)
    }

    /// The trip's current state under the `seq` of that state (not of a later location).
    private var currentStateView: TripView {
        var state = trip
        state.seq = stateSeq
        return users.view(of: state)
    }

    /// Makes `next` the trip's state and tells everyone concerned. The driver map learns it here,
    /// in the actor's order, so a late message can never leave a driver busy with a finished trip.
    private func commit(_ next: Trip) -> TripView {
        let wasRequested = trip.status == .requested
        trip = next
        stateSeq = next.seq
        index.upsert(trip)
        changes.record(trip)
        if let driver = trip.driverID, trip.status.isFinished {
            drivers.clearActiveTrip(trip.id, of: driver)
        }
        let updated = view
        emit(.trip(updated), toOffered: wasRequested)
        if wasRequested {
            drivers.withdraw(trip.id, from: Array(offeredTo.keys))
            offeredTo = [:]
        }
        return updated
    }

    /// Keeps the event for `resume` and sends it to the group (and, when the trip leaves
    /// `REQUESTED`, to the drivers it was offered to who are not in the group).
    private func emit(_ event: HubEvent, toOffered: Bool, except sender: ConnectionID? = nil) {
        history.append(event)
        for (id, member) in members where id != sender { member.mailbox.deliver(event) }
        guard toOffered else { return }
        for (id, driver) in offeredTo where members[id] == nil { driver.deliver(event) }
    }
}

/// The queue of a trip actor that was given no executor: an empty default actor, whose serial
/// executor the trip actor uses as its own.
private actor OwnQueue {}
