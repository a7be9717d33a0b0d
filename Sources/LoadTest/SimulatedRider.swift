import BenchSupport
import NIOCore
import SocketClient
import Synchronization

/// One simulated rider: requests a trip picking up near a random driver, rides it to the end,
/// pauses, and requests again (with `--trip-rate`, it requests when the schedule picks it
/// instead). It measures what a rider sees: the alert latency's start (its `create.trip`), the
/// accept latency (its STARTED state), the latencies of its driver's IN_PROGRESS and COMPLETED
/// and of its own cancels, the location latency (each `trip.location` matched to the fix its
/// driver scheduled), and counts each change of its trip once. A trip nobody accepts within the
/// accept timeout is canceled.
///
/// Against a hub that restarted from an older snapshot, it follows what the hub says: an error
/// answering its cancel or resume (the trip is unknown, or no longer cancelable) ends the trip,
/// and a trip that stays silent while the rider is connected (no state, no location for
/// `stallSeconds` while riding; `stallSeconds` past the accept timeout while requesting) is
/// canceled; after any end it requests anew after its pause.
final class SimulatedRider: SimulatedUser {
    private enum Job {
        case idle
        /// `create.trip` sent at `sentAt`; `trip` once the hub echoed it.
        case requesting(sentAt: UInt64, trip: String?)
        case riding(trip: String)

        var trip: String? {
            switch self {
            case .idle: nil
            case .requesting(_, let trip): trip
            case .riding(let trip): trip
            }
        }
    }

    private struct State {
        var client: WebSocketClient?
        var random: SplitMix64
        /// Draws whether a request goes where no driver is (`--unserved-share`): a generator of
        /// its own, so the other requests are those of a run without.
        var choices: SplitMix64
        var job = Job.idle
        /// The current request was placed where no driver is (`--unserved-share`).
        var unserved = false
        /// Counts requests, so a time-out knows whether it is still about the current one.
        var requests = 0
        /// The `seq` numbers seen of the job's trip.
        var seen = SeqSet()
        /// Watchdog checks (one a second, while connected) since the job's trip was last heard of.
        var quiet = 0
        /// When the rider last sent `cancel.trip` for the job's trip.
        var cancelSentAt: UInt64?
        /// The latest request: when it was sent (or due), and its trip once the hub echoed it.
        /// Kept after the trip is accepted, so that alerts arriving after the race was won are
        /// measured too (dropping them left out the slowest alerts, and more of them the faster
        /// the accept came back).
        var request: (sentAt: UInt64, trip: String?)?

        /// Sends `cancel.trip` for the job's trip now.
        mutating func canceling(_ trip: String) -> String {
            cancelSentAt = MonotonicClock.nanoseconds()
            return ClientFrames.cancelTrip(trip)
        }

        /// Notes `seq` of `trip`; false when it is the job's trip and that `seq` was seen.
        mutating func fresh(_ trip: String, _ seq: Int?) -> Bool {
            guard trip == job.trip else { return true }
            quiet = 0
            guard let seq else { return true }
            return seen.insert(seq)
        }
    }

    /// Seconds a trip may stay silent before the rider cancels it (see the type's comment), or
    /// three GPS intervals when that is longer.
    static let stallSeconds = 10

    let id: Int
    private let state: Mutex<State>

    init(id: Int, seed: UInt64) {
        self.id = id
        state = Mutex(State(random: SplitMix64(seed: seed), choices: SplitMix64(seed: seed ^ 0x0DD5_EED5_0F0F_F1CE)))
    }

    func attach(_ client: WebSocketClient) {
        state.withLock { $0.client = client }
    }

    func detach(_ client: WebSocketClient) {
        state.withLock { state in
            if state.client === client { state.client = nil }
        }
    }

    var isMidTrip: Bool {
        state.withLock { state in
            if case .riding = state.job { true } else { false }
        }
    }

    /// A new socket: resume the job's trip from the last `seq` seen (or from where the last resume
    /// started, if it never ended).
    func reconnected(_ client: WebSocketClient, in traffic: CityTraffic) {
        let resume = state.withLock { state -> String? in
            state.quiet = 0
            guard let trip = state.job.trip else { return nil }
            return ClientFrames.resume([(trip, state.seen.resumePoint())])
        }
        guard let resume else { return }
        client.send(resume)
        traffic.measurements.add(.framesOut)
    }

    /// Once a second: a trip silent for too long (while connected) is canceled; the CANCELED
    /// state or the error answering the cancel ends it.
    func watch(in traffic: CityTraffic) {
        let cancel = state.withLock { state -> (WebSocketClient, String)? in
            guard let client = state.client, let trip = state.job.trip else { return nil }
            state.quiet += 1
            let stall = max(Self.stallSeconds, Int((3 / traffic.settings.gpsHz).rounded(.up)))
            let wait = state.unserved ? traffic.settings.unservedWait : traffic.settings.acceptTimeout
            let limit = if case .riding = state.job { stall } else { Int(wait) + stall }
            guard state.quiet >= limit else { return nil }
            state.quiet = 0
            return (client, state.canceling(trip))
        }
        guard let cancel else { return }
        cancel.0.send(cancel.1)
        traffic.measurements.add(.framesOut)
    }

    /// When the request waiting for a driver was sent (or due), if one waits.
    var waitingSince: UInt64? {
        state.withLock { state in
            if case .requesting(let sentAt, _) = state.job { sentAt } else { nil }
        }
    }

    /// When the rider's latest request was sent (or due), if `trip` may be it.
    func requestSentAt(trip: String) -> UInt64? {
        state.withLock { state in
            guard let request = state.request, request.trip == nil || request.trip == trip else { return nil }
            return request.sentAt
        }
    }

    /// What became of a request.
    enum RequestOutcome {
        case sent
        /// The rider has a trip (or a request) already.
        case busy
        /// No socket now (without a trip rate, it tries again after its pause).
        case offline
        /// The run is over.
        case stopped
    }

    /// Requests a trip from the intersection nearest a random driver to one `tripBlocks` away,
    /// or, for `--unserved-share` of the requests, from where no driver is
    /// (`CityModel.unservedPickUp`). `scheduledAt`: the request's due time on the `--trip-rate`
    /// schedule, from which its alert latency counts (nil: now).
    @discardableResult
    func requestTrip(in traffic: CityTraffic, scheduledAt: UInt64? = nil) -> RequestOutcome {
        guard traffic.isRunning else { return .stopped }
        let free = state.withLock { state -> RequestOutcome in
            guard case .idle = state.job else { return .busy }
            return state.client == nil ? .offline : .sent
        }
        switch free {
        case .busy, .stopped: return free
        case .offline:
            pauseThenRequest(in: traffic)
            return .offline
        case .sent: break
        }
        let city = traffic.city
        let settings = traffic.settings
        let unserved = settings.unservedShare > 0 && state.withLock { Double.random(in: 0..<1, using: &$0.choices) < settings.unservedShare }
        let pickUp: CityModel.Intersection? = if unserved {
            nil
        } else {
            city.nearestIntersection(to: traffic.driverList[state.withLock { Int.random(in: 0..<traffic.driverList.count, using: &$0.random) }].position)
        }
        let request = state.withLock { state -> (client: WebSocketClient?, frame: String, number: Int)? in
            guard case .idle = state.job else { return nil }
            // Offline: try again after the pause.
            guard let client = state.client else { return (nil, "", 0) }
            state.requests += 1
            let sentAt = scheduledAt ?? MonotonicClock.nanoseconds()
            state.job = .requesting(sentAt: sentAt, trip: nil)
            state.unserved = unserved
            state.request = (sentAt, nil)
            state.seen = SeqSet()
            state.quiet = 0
            state.cancelSentAt = nil
            let frame: String
            if let pickUp {
                let dropOff = city.intersection(blocksAway: settings.tripBlocks, from: pickUp, using: &state.random)
                frame = ClientFrames.createTrip(
                    riderID: id, from: city.coordinates(of: city.position(of: pickUp)), Self.address(pickUp),
                    to: city.coordinates(of: city.position(of: dropOff)), Self.address(dropOff)
                )
            } else {
                frame = ClientFrames.createTrip(
                    riderID: id, from: city.coordinates(of: city.unservedPickUp), "Outskirts 1",
                    to: city.coordinates(of: city.unservedDropOff), "Outskirts 2"
                )
            }
            return (client, frame, state.requests)
        }
        guard let request else { return .busy }
        guard let client = request.client else {
            pauseThenRequest(in: traffic)
            return .offline
        }
        client.send(request.frame)
        traffic.measurements.add(.framesOut)
        traffic.measurements.add(.tripRequests)
        if unserved { traffic.measurements.add(.unservedRequests) }
        let wait = unserved ? settings.unservedWait : settings.acceptTimeout
        client.channel.eventLoop.scheduleTask(in: .milliseconds(Int64(wait * 1000))) {
            self.acceptTimedOut(request: request.number, in: traffic)
        }
        return .sent
    }

    /// Cancels the current request if no driver has taken it yet (at the end of a run).
    func cancelWaitingTrip() {
        let cancel = state.withLock { state -> (WebSocketClient, String)? in
            guard let client = state.client, case .requesting(_, let trip?) = state.job else { return nil }
            return (client, state.canceling(trip))
        }
        if let cancel { cancel.0.send(cancel.1) }
    }

    func received(_ frame: HubFrame, in traffic: CityTraffic) {
        let measurements = traffic.measurements
        switch frame {
        case .trip(let trip):
            measurements.observe(trip)
            guard trip.riderID == id, state.withLock({ $0.fresh(trip.id, trip.seq) }) else { return }
            switch trip.status {
            case "REQUESTED":
                let created = state.withLock { state -> Bool in
                    guard case .requesting(let sentAt, nil) = state.job else { return false }
                    state.job = .requesting(sentAt: sentAt, trip: trip.id)
                    if state.request?.trip == nil { state.request?.trip = trip.id }
                    _ = state.fresh(trip.id, trip.seq)
                    return true
                }
                if created { measurements.add(.tripCreates) }
            case "STARTED":
                if let sentAt = trip.driverID.flatMap({ traffic.drivers[$0] })?.acceptSentAt(trip: trip.id) {
                    measurements.latency(.accept, sentAt: sentAt)
                }
                let accepted = state.withLock { state -> (Bool, UInt64?) in
                    guard state.job.trip == trip.id else { return (false, nil) }
                    let waited = if case .requesting(let sentAt, _) = state.job { sentAt } else { UInt64?.none }
                    state.job = .riding(trip: trip.id)
                    return (true, waited)
                }
                if accepted.0 { measurements.add(.tripAccepts) }
                if let sentAt = accepted.1 {
                    measurements.add(.requestsAccepted)
                    Self.decided(waitingSince: sentAt, in: measurements)
                }
            case "IN_PROGRESS":
                guard state.withLock({ $0.job.trip == trip.id }) else { return }
                measurements.add(.tripProgress)
                if let sentAt = trip.driverID.flatMap({ traffic.drivers[$0] })?.updateSentAt(trip: trip.id, status: trip.status) {
                    measurements.latency(.progress, sentAt: sentAt)
                }
            case "COMPLETED", "CANCELED":
                let ended = state.withLock { state -> (Bool, UInt64?, waiting: (since: UInt64, unserved: Bool)?) in
                    guard state.job.trip == trip.id else { return (false, nil, nil) }
                    let waiting = if case .requesting(let sentAt, _) = state.job { (sentAt, state.unserved) } else { (UInt64, Bool)?.none }
                    state.job = .idle
                    return (true, state.cancelSentAt, waiting)
                }
                guard ended.0 else { return }
                if let waiting = ended.waiting {
                    if trip.cancelReason == "no_driver_found" {
                        measurements.add(waiting.unserved ? .noDriverFound : .noDriverFoundServed)
                        measurements.latency(.noDriver, sentAt: waiting.since)
                    } else {
                        measurements.add(.requestsCanceled)
                    }
                    Self.decided(waitingSince: waiting.since, in: measurements)
                }
                if trip.status == "COMPLETED" {
                    measurements.add(.tripsCompleted)
                    if let sentAt = trip.driverID.flatMap({ traffic.drivers[$0] })?.updateSentAt(trip: trip.id, status: trip.status) {
                        measurements.latency(.complete, sentAt: sentAt)
                    }
                } else {
                    measurements.add(.tripCancels)
                    if let sentAt = ended.1 { measurements.latency(.cancel, sentAt: sentAt) }
                }
                pauseThenRequest(in: traffic)
            default:
                break
            }
        case .searching(let tripID, _, let seq):
            guard state.withLock({ $0.fresh(tripID, seq) }) else { return }
            measurements.add(.searchingRounds)
        case .location(let tripID, let driverID, let point, let seq):
            measurements.add(.locationsReceived)
            guard state.withLock({ $0.fresh(tripID, seq) }) else { return }
            if let scheduled = traffic.drivers[driverID]?.matchFix(at: point) {
                measurements.latency(.location, sentAt: scheduled)
            }
        case .error(let code, let requestType):
            measurements.error(code: code, requestType: requestType)
            // The answer to its create, or to a cancel or resume of the job's trip (the only trip
            // it cancels or resumes): the hub does not know the trip, or it cannot be canceled.
            guard requestType == "create.trip" || requestType == "cancel.trip" || requestType == "resume" else { return }
            let ended = state.withLock { state -> (Bool, waiting: Bool) in
                guard requestType == "create.trip" || state.job.trip != nil else { return (false, false) }
                let waiting = if case .requesting = state.job { true } else { false }
                state.job = .idle
                return (true, waiting)
            }
            if ended.waiting { measurements.add(.requestsFailed) }
            if ended.0 { pauseThenRequest(in: traffic) }
        case .resumeDone(let tripID):
            state.withLock { state in
                if state.job.trip == tripID { state.seen.resumeEnded() }
            }
        case .offerWithdrawn, .echoedFix, .other:
            break
        }
    }

    /// A request left REQUESTED (accepted, canceled or without a driver) after waiting since `sentAt`.
    private static func decided(waitingSince sentAt: UInt64, in measurements: Measurements) {
        let now = MonotonicClock.nanoseconds()
        measurements.add(.requestsDecided)
        measurements.add(.requestWaitMicroseconds, Int(now > sentAt ? (now - sentAt) / 1_000 : 0))
    }

    /// Requests again after the pause; with a trip rate, the schedule requests instead.
    private func pauseThenRequest(in traffic: CityTraffic) {
        guard traffic.settings.tripRate == 0 else { return }
        traffic.loops.next().scheduleTask(in: .milliseconds(Int64(traffic.settings.riderPause * 1000))) {
            self.requestTrip(in: traffic)
        }
    }

    /// No driver took request number `number` in time: cancel it (the CANCELED state then frees
    /// the rider), or give up on it if the hub never even echoed it.
    private func acceptTimedOut(request number: Int, in traffic: CityTraffic) {
        let action = state.withLock { state -> (client: WebSocketClient?, cancel: String?, unserved: Bool)? in
            guard state.requests == number, case .requesting(_, let trip) = state.job else { return nil }
            if trip == nil { state.job = .idle }
            return (state.client, trip.map { state.canceling($0) }, state.unserved)
        }
        guard let action else { return }
        traffic.measurements.add(.unacceptedTrips)
        if action.unserved { traffic.measurements.add(.unservedGivenUp) }
        if action.cancel == nil { traffic.measurements.add(.requestsFailed) }
        if let cancel = action.cancel {
            action.client?.send(cancel)
            traffic.measurements.add(.framesOut)
        } else {
            pauseThenRequest(in: traffic)
        }
    }

    /// `Street 3 & Avenue 7`.
    private static func address(_ intersection: CityModel.Intersection) -> String {
        "Street \(intersection.column) & Avenue \(intersection.row)"
    }
}
