import Foundation

/// Owns one live trip: its state, its track, the latest events, the connections in its group,
/// and, while it waits for a driver, its offer rounds (`OfferRounds`) and the drivers holding its
/// offers. Every change goes through here, so concurrent accepts are ordered and exactly one
/// driver wins, and every event gets the next `seq`. Fan-out only
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

    /// What goes out: an event of the trip's group, or events for single drivers (offers and
    /// their withdrawals), which are not the group's and are not kept for `resume`.
    private enum Outgoing {
        /// To the group (except `except`) and to `offered`, drivers outside the group who held an
        /// offer of the trip (its end, when it leaves `REQUESTED`; taken when it was emitted).
        case group(HubEvent, offered: [any Mailbox], except: ConnectionID?)
        case direct([(mailbox: any Mailbox, event: HubEvent)])
    }

    /// What goes out once the commit of the change it follows is durable.
    private struct HeldEvent {
        let outgoing: Outgoing
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
    /// The drivers holding a live offer of the trip (those of `rounds`).
    private var offeredTo: [ConnectionID: any Mailbox] = [:]
    /// The trip as of its latest state change (`trip.seq` also counts locations and notices): the
    /// state offers carry, under that state's own `seq`.
    private var lastState: Trip
    /// While the trip is `REQUESTED`: its offer rounds.
    private var rounds: OfferRounds?
    /// While it is `STARTED`: its driver's approach to the pick-up.
    private var arrival = ArrivalWatch()
    private let dispatch: DispatchSettings
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
        users: UserDirectory, index: TripIndex, changes: ChangeTracker, drivers: DriverMap,
        dispatch: DispatchSettings = DispatchSettings()
    ) {
        self.queue = placement.map { .given($0.executor) } ?? .own(OwnQueue())
        self.trip = trip
        self.lastState = trip
        self.dispatch = dispatch
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
        rounds?.forget(connection)
    }

    /// Opens a new trip in one step: joins the rider who created it and sends it the trip, and
    /// makes its first offers (`dispatchTick`), once the creation is durable. The drivers offered
    /// it are remembered so they learn when the trip is taken or canceled.
    func open(creator: any Mailbox) {
        members[creator.connectionID] = Member(mailbox: creator, replayableThrough: nil)
        emit(.trip(view))
        dispatchTick()
    }

    /// Moves the trip's offer rounds on to now (`OfferRounds.advance`): withdraws the offers that
    /// expired and those of drivers no longer available, starts the next round when one ended,
    /// offers the trip to the drivers the round has room for (late drivers too), and past
    /// `dispatchTimeout` ends the trip without a driver. Does nothing once the trip left `REQUESTED`.
    func dispatchTick() {
        guard trip.status == .requested else {
            rounds = nil
            return
        }
        let now = clock.now()
        var rounds = self.rounds ?? OfferRounds(
            search: dispatch.search, policy: dispatch.offers, hasPickUp: trip.pickUpLocation != nil, requestedAt: trip.created
        )
        let pickUp = trip.pickUpLocation
        let unavailable = drivers.unavailable(among: rounds.holders, needsPosition: pickUp != nil, now: now)
        var found: [ConnectionID: any Mailbox] = [:]
        let step = rounds.advance(now: now, unavailable: unavailable) { radius, excluding, limit in
            drivers.candidates(near: pickUp, radius: radius ?? 0, excluding: excluding, limit: limit, now: now).compactMap { driver in
                // A driver in the trip's group (a rider's own driver account, say) hears it there.
                guard members[driver.candidate.connection] == nil else { return nil }
                found[driver.candidate.connection] = driver.mailbox
                return driver.candidate
            }
        }
        self.rounds = rounds
        // Offers that ended in this step are withdrawn first, also when the trip ends with it (no
        // driver left in range): each driver hears one of the two, never both.
        withdraw(step.withdrawn)
        if step.timedOut {
            endWithoutDriver(at: now)
            return
        }
        if let round = step.newRound, round > 1 {
            trip.seq += 1
            emit(.notice(TripNotice(tripID: trip.id, driverID: nil, kind: .searching(round: round, radius: rounds.radius), seq: trip.seq)))
        }
        guard !step.offers.isEmpty else { return }
        let state = users.view(of: lastState)
        var outgoing: [(mailbox: any Mailbox, event: HubEvent)] = []
        for (candidate, offer) in step.offers {
            guard let mailbox = found[candidate.connection] else { continue }
            offeredTo[candidate.connection] = mailbox
            let event: HubEvent
            if let distance = candidate.distance, let expires = offer.expires {
                let terms = OfferTerms(
                    round: offer.round, distance: distance, eta: dispatch.eta.seconds(toCover: distance), expires: expires,
                    expiresIn: Double(expires.microseconds - now.microseconds) / 1_000_000
                )
                event = .offer(state, terms)
            } else {
                event = .trip(state)
            }
            outgoing.append((mailbox, event))
        }
        drivers.noteOffered(trip.id, to: outgoing.map(\.mailbox.connectionID))
        emit(outgoing)
    }

    /// A driver that just connected takes up the offer of this trip without a pick-up point (no
    /// frame: it lists the trip over REST), when it is available and was not asked before; it
    /// then hears when the trip is decided, as every holder does (`Hub.connect`).
    func holdOffer(for mailbox: any Mailbox, driverID: Int) {
        guard trip.status == .requested, trip.pickUpLocation == nil, members[mailbox.connectionID] == nil else { return }
        var rounds = self.rounds ?? OfferRounds(
            search: dispatch.search, policy: dispatch.offers, hasPickUp: false, requestedAt: trip.created
        )
        let now = clock.now()
        guard now < rounds.deadline, drivers.isAvailable(mailbox.connectionID, needsPosition: false, now: now),
            rounds.hold(OfferRounds.Candidate(connection: mailbox.connectionID, driverID: driverID, distance: nil))
        else { return }
        self.rounds = rounds
        offeredTo[mailbox.connectionID] = mailbox
        drivers.noteOffered(trip.id, to: [mailbox.connectionID])
    }

    /// A driver declines its offer of the trip: its offer ends (it is told, as is the sending
    /// connection when another of its connections held the offer), and when that ended the round,
    /// the next one starts at once. Refused, changing nothing, unless the sender is a driver
    /// holding a live offer of the trip.
    func decline(by sender: Principal, from mailbox: any Mailbox) throws(HubError) {
        guard sender.group == .driver else {
            throw HubError(.forbidden, "Only drivers decline offers.")
        }
        guard trip.status == .requested else {
            throw HubError(.noOffer, "The trip no longer waits for a driver: it is \(trip.status.rawValue).")
        }
        guard var rounds, rounds.holdsOffer(sender.userID) else {
            throw HubError(.noOffer, "You hold no live offer of this trip: it expired, was withdrawn or was never made.")
        }
        let ended = rounds.decline(driverID: sender.userID)
        self.rounds = rounds
        withdraw(ended.map { ($0, .declined) }, alsoTelling: ended.contains(mailbox.connectionID) ? nil : mailbox)
        dispatchTick()
    }

    /// Tells each driver whose offer ended why, and forgets the offers.
    private func withdraw(_ ended: [(connection: ConnectionID, reason: WithdrawalReason)], alsoTelling extra: (any Mailbox)? = nil) {
        guard !ended.isEmpty else { return }
        var outgoing: [(mailbox: any Mailbox, event: HubEvent)] = []
        for (connection, reason) in ended {
            guard let mailbox = offeredTo.removeValue(forKey: connection) else { continue }
            outgoing.append((mailbox, .offerWithdrawn(OfferWithdrawal(tripID: trip.id, reason: reason, seq: trip.seq))))
        }
        if let extra, let reason = ended.first?.reason {
            outgoing.append((extra, .offerWithdrawn(OfferWithdrawal(tripID: trip.id, reason: reason, seq: trip.seq))))
        }
        drivers.withdraw(trip.id, from: ended.map(\.connection))
        emit(outgoing)
    }

    /// No driver took the trip within `dispatchTimeout`: it ends `CANCELED` with
    /// `no_driver_found`, through the commit log like every change; its group and the drivers
    /// still holding its offers hear it once that is durable.
    private func endWithoutDriver(at now: Timestamp) {
        guard let next = try? TripRules.endWithoutDriver(trip, at: now) else { return }
        _ = commit(next)
        dispatch.outcomes.recordNoDriver(at: now, pickUp: next.pickUpLocation)
    }

    /// Whether a driver holds a live offer of the trip (for tests and the simulator's checks).
    public func holdsOffer(_ driverID: Int) -> Bool {
        rounds?.holdsOffer(driverID) ?? false
    }

    /// The drivers (user ids) holding a live offer of the trip, ascending.
    public var offerHolders: [Int] {
        Set(rounds?.live.values.map(\.driverID) ?? []).sorted()
    }

    /// The trip's current offer round (0 before its first, or when it does not wait).
    public var offerRound: Int { rounds?.round ?? 0 }

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
            var pickUp: PickUpCheck?
            if update.status == .inProgress, trip.pickUpLocation != nil, dispatch.pickUp.pickUpRadius > 0 {
                // The trip's track holds its driver's latest fix (forwarded from another node too);
                // before the accept, the driver map holds it.
                let position = trip.driverID == sender.userID ? track.last?.fix.point : nil
                pickUp = PickUpCheck(radius: dispatch.pickUp.pickUpRadius, driverPosition: position ?? drivers.lastPosition(of: sender.userID))
            }
            let next = try TripRules.apply(update, by: sender, to: stateToCheck(for: update), at: clock.now(), pickUp: pickUp)
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
    ///
    /// While the trip is `STARTED` and has a pick-up point, the location carries the driver's
    /// distance and ETA to it, and the group hears once that the driver is arriving and once that
    /// it arrived (`ArrivalWatch`), each a notice with a `seq` of its own.
    public func recordLocation(_ fix: LocationFix, from driverID: Int, via sender: ConnectionID) -> Bool {
        guard trip.status.isActive, trip.driverID == driverID else { return false }
        var progress: PickUpProgress?
        var notices: [TripNotice.Kind] = []
        if trip.status == .started, let pickUp = trip.pickUpLocation {
            (progress, notices) = arrival.observe(
                distance: fix.point.distance(to: pickUp), speed: fix.speed, at: clock.now(), policy: dispatch.pickUp, eta: dispatch.eta
            )
        }
        trip.seq += 1
        let point = TrackPoint(tripID: trip.id, seq: trip.seq, fix: fix)
        track.append(point)
        // The point alone: the trip row stays as it was (a restart takes `seq` from the track),
        // so a snapshot writes one row per location, not a trip row per moving trip too.
        changes.record(point)
        emit(.location(TripLocation(tripID: trip.id, driverID: driverID, fix: fix, seq: trip.seq, pickUp: progress)), except: sender)
        for kind in notices {
            trip.seq += 1
            emit(.notice(TripNotice(tripID: trip.id, driverID: driverID, kind: kind, seq: trip.seq)))
        }
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
        lastState = next
        index.upsert(trip)
        // Tracker first, log second: a journal that drops what a snapshot has written relies on it
        // (a change in a journal segment was recorded before the snapshot that ends the segment).
        changes.record(trip)
        required = commitLog.append(.trip(trip))
        if let driver = trip.driverID, trip.status.isFinished {
            drivers.clearActiveTrip(trip.id, of: driver)
        }
        let updated = view
        // The offers end with the trip's wait: their holders hear its new state.
        let withdraws = wasRequested && plantedBug != .offersOutliveTheirTrip
        let offered = withdraws ? offeredTo.sorted { $0.key.rawValue < $1.key.rawValue }.compactMap { id, driver in members[id] == nil ? driver : nil } : []
        emit(.trip(updated), offered: offered)
        if withdraws {
            drivers.withdraw(trip.id, from: Array(offeredTo.keys))
            offeredTo = [:]
            rounds = nil
        }
        return Change(view: updated, position: required)
    }

    /// Sends an event to the group (except `sender`) and to `offered` (drivers outside the group:
    /// the end of their offers when the trip leaves `REQUESTED`) once the trip's latest change is
    /// durable: at once when it is and nothing waits before it, else held in order until it is.
    private func emit(_ event: HubEvent, offered: [any Mailbox] = [], except sender: ConnectionID? = nil) {
        emit(.group(event, offered: offered, except: sender))
    }

    /// Sends events to single drivers (offers, withdrawals), in order with the group's.
    private func emit(_ direct: [(mailbox: any Mailbox, event: HubEvent)]) {
        guard !direct.isEmpty else { return }
        emit(.direct(direct))
    }

    private func emit(_ outgoing: Outgoing) {
        if held.isEmpty, commitLog.isDurable(required) {
            release(outgoing)
            return
        }
        held.append(HeldEvent(outgoing: outgoing, requires: required))
        scheduleRelease()
    }

    /// Sends out what was emitted; a group event is kept for `resume`.
    private func release(_ outgoing: Outgoing) {
        switch outgoing {
        case .group(let event, let offered, let sender):
            history.append(event)
            releasedSeq = event.seq
            if case .trip(let view) = event {
                releasedState = view.trip
                index.release(view.trip)
            }
            for (id, member) in members where id != sender { member.mailbox.deliver(event) }
            // A driver offered the trip may have joined its group since (by taking it): once is enough.
            for driver in offered where members[driver.connectionID] == nil { driver.deliver(event) }
        case .direct(let events):
            // A driver that joined the group since (by taking the trip) hears it there: an offer
            // held for a commit must not reach it a second time.
            for (mailbox, event) in events where members[mailbox.connectionID] == nil { mailbox.deliver(event) }
        }
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
            release(waiting.outgoing)
            released += 1
        }
        held.removeFirst(released)
        scheduleRelease()
    }
}

/// The queue of a trip actor that was given no executor: an empty default actor, whose serial
/// executor the trip actor uses as its own.
private actor OwnQueue {}
