import Foundation

/// Owns one live trip: its state, its track, the latest events, the connections in its group,
/// and the drivers it was offered to. Every change goes through here, so concurrent accepts are
/// ordered and exactly one driver wins, and every event gets the next `seq`. Fan-out only
/// enqueues into mailboxes; it never suspends, and neither does any method here, so each call
/// runs to its end once started.
///
/// Every state change is appended to the hub's `CommitLog` as it is made, and the trip's events
/// from then on are held back until the log says the change is durable: no client hears of a
/// change (nor of a location after it) before a crash could no longer undo it. Held events go
/// out in order, to the group as it is when they are released; `resume` and the history see
/// released events only.
public actor TripActor {
    /// Where the actor's jobs run (SE-0392): an executor the hub was given, or the queue of a
    /// default actor of its own, which it shares.
    private enum Queue: Sendable {
        case given(any SerialExecutor)
        case own(OwnQueue)
    }

    private nonisolated let queue: Queue

    /// The queue of plain jobs on this actor's executor when the hub was given `TripExecutors`
    /// (`Hub.recordFix` hands GPS fixes over with it); nil when it runs on a queue of its own.
    nonisolated let jobs: (any TripJobQueue)?

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

    /// An event waiting for the commit of the change it follows.
    private struct HeldEvent {
        let event: HubEvent
        /// Drivers the trip was offered to who are to hear it too (taken when it was emitted).
        let offered: [any Mailbox]
        let except: ConnectionID?
        let requires: CommitPosition
    }

    private var trip: Trip
    /// The trip's latest released state (its `seq` that of the state, not of a later location):
    /// what `resume` sends when its history does not reach back. Nil until the creation is
    /// durable. `trip.seq` also counts locations; a current state `resume` sends carries the
    /// state's own `seq`, so a `seq` always names the same event (see `resume`).
    private var releasedState: Trip?
    /// The `seq` of the latest event released (or of the restored trip).
    private var releasedSeq: Int64
    /// The log position of the trip's latest change: events emitted now wait for it.
    private var required: CommitPosition
    private var held: [HeldEvent] = []
    private var releaseScheduled = false
    private let commitLog: any CommitLog
    /// Where the task that releases held events starts (nil: the global pool).
    private let tasks: (any TaskExecutor)?
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

    /// - Parameter createdAt: the log position of the trip's creation when it is new (its first
    ///   events wait for it); nil for a trip restored from the store, durable already.
    init(
        trip: Trip, track: [TrackPoint], historyLength: Int, clock: any HubClock, plantedBug: PlantedBug?,
        placement: TripPlacement?,
        commitLog: any CommitLog, createdAt: CommitPosition?,
        users: UserDirectory, index: TripIndex, changes: ChangeTracker, drivers: DriverMap
    ) {
        self.queue = placement.map { .given($0.executor) } ?? .own(OwnQueue())
        self.trip = trip
        self.releasedState = createdAt == nil ? trip : nil
        self.releasedSeq = createdAt == nil ? trip.seq : 0
        self.required = createdAt ?? 0
        self.commitLog = commitLog
        self.tasks = placement?.tasks
        self.jobs = placement?.jobs
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
        members[mailbox.connectionID] = Member(mailbox: mailbox, replayableThrough: releasedSeq)
        if sendingState, let state = currentStateView { mailbox.replay([.trip(state)]) }
    }

    func leave(_ connection: ConnectionID) {
        members[connection] = nil
        offeredTo[connection] = nil
    }

    /// Opens a new trip in one step: joins the rider who created it and sends it the trip, and
    /// alerts `drivers` (nearest first), once the creation is durable. The drivers are remembered
    /// so they learn when the trip is taken or canceled.
    func open(creator: any Mailbox, alerting drivers: [any Mailbox]) {
        members[creator.connectionID] = Member(mailbox: creator, replayableThrough: nil)
        let view = self.view
        var offered: [any Mailbox] = []
        if trip.status == .requested {
            for driver in drivers where members[driver.connectionID] == nil {
                offeredTo[driver.connectionID] = driver
                offered.append(driver)
            }
        }
        emit(.trip(view), offered: offered)
    }

    /// A change as made in memory, and the log position that must be durable before the caller
    /// may acknowledge it.
    struct Change: Sendable {
        let view: TripView
        let position: CommitPosition
    }

    /// Validates and applies an update; on success the sender joins the group and everyone
    /// in it gets the new state once, and drivers the trip was offered to learn it left `REQUESTED`
    /// (all of them once the change is durable).
    func update(_ update: TripUpdate, by sender: Principal, from mailbox: any Mailbox) throws(Refusal) -> Change {
        do throws(HubError) {
            let next = try TripRules.apply(update, by: sender, to: stateToCheck(for: update), at: clock.now())
            // A driver takes one trip at a time: the claim is atomic across all trip actors.
            if next.status.isActive, !drivers.claim(trip.id, for: sender.userID) {
                throw HubError(.forbidden, "You are driving another trip; finish it before taking this one.")
            }
            join(mailbox)
            return commit(next)
        } catch {
            throw Refusal(error: error, position: required)
        }
    }

    /// Cancels the trip for its rider; the group (the sender's connection joined to it) and every
    /// driver it was offered to learn it.
    func cancel(by sender: Principal, from mailbox: any Mailbox) throws(Refusal) -> Change {
        do throws(HubError) {
            let next = try TripRules.cancel(trip, by: sender, at: clock.now())
            join(mailbox)
            return commit(next)
        } catch {
            throw Refusal(error: error, position: required)
        }
    }

    /// A refused change, with the log position of the state it was judged against: the caller
    /// answers only once that state is durable, so no one is refused (`trip_taken`, say) on the
    /// strength of a change that a crash, or a lost lease, could still undo.
    struct Refusal: Error {
        let error: HubError
        let position: CommitPosition
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
        emit(.location(TripLocation(tripID: trip.id, driverID: driverID, fix: fix, seq: trip.seq)), except: sender)
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
    /// of that state (`releasedState`), not `trip.seq`, which may be a location's: clients keep the
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
        // After the replay, in the same queue: the client may move its resume point on.
        defer { mailbox.resumeEnded(trip: trip.id, through: max(lastSeen, through ?? 0)) }
        guard let through, lastSeen < through else { return .replay([]) }
        if let missed = history.events(in: (max(lastSeen, 0) + 1)...through) {
            mailbox.replay(missed)
            return .replay(missed)
        }
        guard let view = currentStateView else { return .replay([]) }
        let state = HubEvent.trip(view)
        if view.trip.seq <= through { mailbox.replay([state]) }
        return .currentState(state)
    }

    /// The trip's latest released state under the `seq` of that state (not of a later location).
    private var currentStateView: TripView? {
        releasedState.map(users.view(of:))
    }

    /// Makes `next` the trip's state and tells everyone concerned. The driver map learns it here,
    /// in the actor's order, so a late message can never leave a driver busy with a finished trip.
    private func commit(_ next: Trip) -> Change {
        let wasRequested = trip.status == .requested
        trip = next
        index.upsert(trip)
        // Tracker first, log second: a journal that drops what a snapshot has written relies on it
        // (a change in a journal segment was recorded before the snapshot that ends the segment).
        changes.record(trip)
        required = commitLog.append(.trip(trip))
        if let driver = trip.driverID, trip.status.isFinished {
            drivers.clearActiveTrip(trip.id, of: driver)
        }
        let updated = view
        let offered = wasRequested ? offeredTo.compactMap { id, driver in members[id] == nil ? driver : nil } : []
        emit(.trip(updated), offered: offered)
        if wasRequested {
            drivers.withdraw(trip.id, from: Array(offeredTo.keys))
            offeredTo = [:]
        }
        return Change(view: updated, position: required)
    }

    /// Sends an event to the group (except `sender`) and to `offered` (drivers outside the group:
    /// an offer, or its end when the trip leaves `REQUESTED`) once the trip's latest change is
    /// durable: at once when it is and nothing waits before it, else held in order until it is.
    private func emit(_ event: HubEvent, offered: [any Mailbox] = [], except sender: ConnectionID? = nil) {
        if held.isEmpty, commitLog.isDurable(required) {
            release(event, offered: offered, except: sender)
            return
        }
        held.append(HeldEvent(event: event, offered: offered, except: sender, requires: required))
        scheduleRelease()
    }

    /// Keeps the event for `resume` and sends it out.
    private func release(_ event: HubEvent, offered: [any Mailbox], except sender: ConnectionID?) {
        history.append(event)
        releasedSeq = event.seq
        if case .trip(let view) = event {
            releasedState = view.trip
            index.release(view.trip)
        }
        for (id, member) in members where id != sender { member.mailbox.deliver(event) }
        // A driver offered the trip may have joined its group since (by taking it): once is enough.
        for driver in offered where members[driver.connectionID] == nil { driver.deliver(event) }
    }

    /// Asks the log to wake the actor once the first held event's change is durable.
    private func scheduleRelease() {
        guard !releaseScheduled, let first = held.first else { return }
        releaseScheduled = true
        commitLog.whenDurable(first.requires) { [tasks] failure in
            Task(executorPreference: tasks) { await self.releaseHeld(after: failure) }
        }
    }

    /// Sends the held events whose changes are durable now, in order. After a failed commit
    /// nothing held goes out: the change may never be durable, and the hub is stopping.
    private func releaseHeld(after failure: HubError?) {
        releaseScheduled = false
        guard failure == nil else {
            held = []
            return
        }
        var released = 0
        for waiting in held {
            guard commitLog.isDurable(waiting.requires) else { break }
            release(waiting.event, offered: waiting.offered, except: waiting.except)
            released += 1
        }
        held.removeFirst(released)
        scheduleRelease()
    }
}

/// The queue of a trip actor that was given no executor: an empty default actor, whose serial
/// executor the trip actor uses as its own.
private actor OwnQueue {}
