import BenchSupport
import Foundation
import SocketClient
import Synchronization

/// One simulated driver: drives between random intersections, sends a GPS fix at each tick of
/// the schedule, races to accept every trip it is alerted of while it is free, and drives the
/// trip it won to the pick-up (then `IN_PROGRESS`) and the drop-off (then `COMPLETED`).
///
/// It remembers the fixes it sent while driving a trip, so the rider's `trip.location` can be
/// matched to the moment the fix was scheduled (by exact coordinates: each fix is somewhere else).
///
/// A hub that restarted from an older snapshot may disagree with it: any error answering its
/// `update.trip` drops the trip (back to offering itself), an accept without answer is given up
/// after `acceptGiveUp` seconds, and after each reconnection (and when the hub says it is busy
/// with another trip) it completes its last trip again, which the hub may still hold as active.
final class SimulatedDriver: SimulatedUser {
    /// What the driver is busy with.
    private enum Job {
        case roaming
        case accepting(trip: String)
        case toPickUp(trip: String, dropOff: CityModel.Intersection)
        case toDropOff(trip: String)

        var trip: String? {
            switch self {
            case .roaming: nil
            case .accepting(let trip), .toPickUp(let trip, _), .toDropOff(let trip): trip
            }
        }

        var isDriving: Bool {
            switch self {
            case .toPickUp, .toDropOff: true
            case .roaming, .accepting: false
            }
        }
    }

    private struct SentFix {
        let point: Coordinates
        let scheduledAt: UInt64
    }

    private struct State {
        var client: WebSocketClient?
        var vehicle: Vehicle
        /// This driver's own speed (m/s).
        let speed: Double
        var random: SplitMix64
        /// Draws whether to decline an offer, let it expire or race for it (`--decline-share`,
        /// `--ignore-share`): a generator of its own, so the routes stay those of a run without.
        var choices: SplitMix64
        var job = Job.roaming
        /// Fixes sent while driving a trip and not yet seen by the rider, oldest first.
        var fixes: [SentFix] = []
        /// The last `update.trip` STARTED this driver sent.
        var accept: (trip: String, sentAt: UInt64)?
        /// The last `update.trip` IN_PROGRESS and COMPLETED it sent on its own (not a probe), with
        /// the due time of the fix tick that sent it.
        var progress: (trip: String, sentAt: UInt64)?
        var completion: (trip: String, sentAt: UInt64)?
        /// The `seq` numbers seen of the job's trip.
        var seen = SeqSet()
        /// Watchdog checks (one a second) since the job began.
        var checks = 0
        /// The last trip this driver drove or may have won: a restarted hub may still hold it
        /// as this driver's active trip, and then alerts no more trips to it.
        var lastTrip: String?
        /// The trips of the `update.trip` messages sent on this socket and not yet answered,
        /// oldest first: the hub answers a socket's messages in order, each with the trip's new
        /// state (this driver its driver) or an error, which names no trip.
        var awaiting: [String] = []
        /// When the last probe after a `forbidden` was sent (monotonic nanoseconds).
        var probedAt: UInt64 = 0

        /// An `update.trip` of `trip` goes out on the current socket.
        mutating func sending(_ trip: String) {
            if client != nil { awaiting.append(trip) }
        }

        mutating func begin(_ next: Job, seq: Int? = nil) {
            job = next
            seen = SeqSet()
            if let seq { _ = seen.insert(seq) }
            checks = 0
        }

        /// Drops the trip and offers itself again.
        mutating func dropTrip() {
            begin(.roaming)
            fixes.removeAll()
        }
    }

    /// Seconds an accept may go unanswered (while connected) before the driver gives up on it.
    static let acceptGiveUp = 5

    /// Fixes kept for matching; older ones were coalesced by the hub or lost.
    static let keptFixes = 64

    let id: Int
    private let state: Mutex<State>

    /// Every driver starts at an intersection and keeps a speed of its own, 70–130 % of
    /// `speed`: at one common speed, every car of the grid city reached an intersection at the
    /// same moments (each block takes the same time), so trips reached their pick-ups and
    /// drop-offs in lockstep and riders requested in waves of hundreds within one second.
    init(id: Int, city: CityModel, speed: Double, seed: UInt64) {
        self.id = id
        var random = SplitMix64(seed: seed)
        var vehicle = Vehicle(at: city.randomIntersection(using: &random), in: city)
        vehicle.drive(to: city.randomIntersection(using: &random), in: city)
        let ownSpeed = min(100, speed * Double.random(in: 0.7...1.3, using: &random))
        state = Mutex(State(vehicle: vehicle, speed: ownSpeed, random: random, choices: SplitMix64(seed: seed ^ 0x5DEE_CE66_D1CE_0FFE)))
    }

    func attach(_ client: WebSocketClient) {
        state.withLock { $0.client = client }
    }

    func detach(_ client: WebSocketClient) {
        state.withLock { state in
            if state.client === client { state.client = nil }
        }
    }

    var isMidTrip: Bool { state.withLock { $0.job.isDriving } }

    /// A new socket: resume the job's trip from the last `seq` seen, and complete the last trip
    /// again in case the hub still holds it (its answer, state or error, is a probe's).
    func reconnected(_ client: WebSocketClient, in traffic: CityTraffic) {
        let frames = state.withLock { state -> [String] in
            state.awaiting = []
            state.checks = 0
            var frames: [String] = []
            if let trip = state.job.trip { frames.append(ClientFrames.resume([(trip, state.seen.resumePoint())])) }
            if let last = state.lastTrip, last != state.job.trip {
                state.sending(last)
                frames.append(ClientFrames.updateTrip(last, status: "COMPLETED"))
            }
            return frames
        }
        for frame in frames { client.send(frame) }
        traffic.measurements.add(.framesOut, frames.count)
    }

    /// Once a second: an accept unanswered for `acceptGiveUp` seconds (while connected) is given up.
    func watch() {
        state.withLock { state in
            guard state.client != nil, case .accepting = state.job else { return }
            state.checks += 1
            guard state.checks >= Self.acceptGiveUp else { return }
            // It may have won: the hub may hold it as this driver's active trip.
            state.lastTrip = state.job.trip
            state.dropTrip()
        }
    }

    var position: CityModel.Position {
        state.withLock { $0.vehicle.position }
    }

    /// One step of the GPS schedule: move (at `tripSpeed` on a trip, when set), maybe reach the
    /// pick-up or drop-off, send the fix.
    func tick(scheduledAt: UInt64, in traffic: CityTraffic) {
        let city = traffic.city
        let settings = traffic.settings
        let (client, frames) = state.withLock { state -> (WebSocketClient?, [String]) in
            var frames: [String] = []
            let speed = settings.tripSpeed > 0 && state.job.isDriving ? settings.tripSpeed : state.speed
            state.vehicle.advance(speed / settings.gpsHz, in: city)
            if state.vehicle.hasArrived {
                switch state.job {
                case .toPickUp(let trip, let dropOff):
                    state.sending(trip)
                    frames.append(ClientFrames.updateTrip(trip, status: "IN_PROGRESS"))
                    state.progress = (trip, scheduledAt)
                    state.vehicle.drive(to: dropOff, in: city)
                    state.job = .toDropOff(trip: trip)
                case .toDropOff(let trip):
                    state.sending(trip)
                    frames.append(ClientFrames.updateTrip(trip, status: "COMPLETED"))
                    state.completion = (trip, scheduledAt)
                    state.dropTrip()
                    state.vehicle.drive(to: city.randomIntersection(using: &state.random), in: city)
                case .roaming, .accepting:
                    state.vehicle.drive(to: city.randomIntersection(using: &state.random), in: city)
                }
            }
            let point = city.coordinates(of: state.vehicle.position)
            if state.job.isDriving {
                state.fixes.append(SentFix(point: point, scheduledAt: scheduledAt))
                if state.fixes.count > Self.keptFixes { state.fixes.removeFirst() }
            }
            let milliseconds = UInt64(Date().timeIntervalSince1970 * 1000)
            // The fix first: a driver says "picked up" from where it is (the hub refuses
            // IN_PROGRESS farther than `pickupRadius` from the pick-up, by the driver's last fix).
            frames.insert(ClientFrames.location(point, heading: state.vehicle.heading, speed: speed, timestamp: milliseconds), at: 0)
            return (state.client, frames)
        }
        guard let client else { return }
        for frame in frames { client.send(frame) }
        traffic.measurements.add(.framesOut, frames.count)
        traffic.measurements.add(.locationsSent)
    }

    /// Completes the trip being driven, wherever the car is (at the end of a run).
    func finishTrip() {
        let finish = state.withLock { state -> (WebSocketClient, String)? in
            switch state.job {
            case .toPickUp(let trip, _), .toDropOff(let trip):
                state.sending(trip)
                state.dropTrip()
                return state.client.map { ($0, ClientFrames.updateTrip(trip, status: "COMPLETED")) }
            case .roaming, .accepting:
                return nil
            }
        }
        if let finish { finish.0.send(finish.1) }
    }

    func received(_ frame: HubFrame, in traffic: CityTraffic) {
        let measurements = traffic.measurements
        switch frame {
        case .trip(let trip) where trip.status == "REQUESTED" && trip.riderID != id:
            alerted(of: trip, in: traffic)
        case .trip(let trip):
            measurements.observe(trip)
            // A decided trip's new state, as every driver still holding its offer hears it.
            if trip.driverID != id, trip.status != "REQUESTED" { measurements.add(.offersDecided) }
            learn(trip, in: traffic.city)
        case .offerWithdrawn(_, let reason):
            switch reason {
            case "expired": measurements.add(.withdrawnExpired)
            case "declined": measurements.add(.withdrawnDeclined)
            case "unavailable": measurements.add(.withdrawnUnavailable)
            default: measurements.add(.withdrawnOther)
            }
        case .error(let code, let requestType):
            measurements.error(code: code, requestType: requestType)
            guard requestType == "update.trip" || requestType == "resume" else { return }
            let probe = state.withLock { state -> (WebSocketClient, String)? in
                // The answer to an update of the job's trip, or to a resume (only the job's trip is
                // resumed): the hub does not let this driver drive it (taken, unknown, or behind
                // what the driver believed). An update of an earlier trip changes nothing.
                let about = requestType == "resume" ? state.job.trip : (state.awaiting.isEmpty ? nil : state.awaiting.removeFirst())
                guard let about, about == state.job.trip else { return nil }
                let accepting = if case .accepting = state.job { true } else { false }
                state.dropTrip()
                // `forbidden` answering an accept: the hub holds this driver busy with another
                // trip, probably the last one, which it lost the end of: complete that again.
                let now = MonotonicClock.nanoseconds()
                guard accepting, code == "forbidden", let last = state.lastTrip, last != about, let client = state.client,
                    now &- state.probedAt > 5_000_000_000
                else { return nil }
                state.probedAt = now
                state.sending(last)
                return (client, ClientFrames.updateTrip(last, status: "COMPLETED"))
            }
            if let probe {
                probe.0.send(probe.1)
                measurements.add(.framesOut)
            }
        case .resumeDone(let tripID):
            state.withLock { state in
                if state.job.trip == tripID { state.seen.resumeEnded() }
            }
        case .location, .searching, .echoedFix, .other:
            break
        }
    }

    /// When this driver's `update.trip` STARTED for `trip` was sent.
    func acceptSentAt(trip: String) -> UInt64? {
        state.withLock { state in state.accept.flatMap { $0.trip == trip ? $0.sentAt : nil } }
    }

    /// When this driver's own `update.trip` IN_PROGRESS or COMPLETED for `trip` was due (the
    /// scheduled time of the fix tick that sent it).
    func updateSentAt(trip: String, status: String) -> UInt64? {
        state.withLock { state in
            let sent = status == "IN_PROGRESS" ? state.progress : status == "COMPLETED" ? state.completion : nil
            return sent.flatMap { $0.trip == trip ? $0.sentAt : nil }
        }
    }

    /// The scheduled time of the fix at `point`, if this driver sent it while driving a trip;
    /// forgets it and every older fix.
    func matchFix(at point: Coordinates) -> UInt64? {
        state.withLock { state in
            guard let index = state.fixes.firstIndex(where: { $0.point == point }) else { return nil }
            let scheduled = state.fixes[index].scheduledAt
            state.fixes.removeFirst(index + 1)
            return scheduled
        }
    }

    /// An alert (an offer): measured, and, while the load still runs, declined or let expire
    /// (`--decline-share`, `--ignore-share`, drawn per offer) or else raced for when the driver
    /// is free. (After the load stops, the results are read a second later: a race begun then,
    /// for a trip requested just before, could be counted before its winner is seen.)
    private func alerted(of trip: HubFrame.TripState, in traffic: CityTraffic) {
        let measurements = traffic.measurements
        measurements.add(.offersReceived)
        if let round = trip.offerRound, round > 1 { measurements.add(.offersLaterRound) }
        if let sentAt = trip.riderID.flatMap({ traffic.riders[$0] })?.requestSentAt(trip: trip.id) {
            measurements.latency(.alert, sentAt: sentAt)
        }
        guard traffic.isRunning else { return }
        let settings = traffic.settings
        if settings.declineShare + settings.ignoreShare > 0 {
            let (draw, client) = state.withLock { state in (Double.random(in: 0..<1, using: &state.choices), state.client) }
            if draw < settings.declineShare {
                // The hub answers with the withdrawal (`declined`), or with `no_offer` when the
                // trip was taken (or its offer ended) before the decline arrived.
                guard let client else { return }
                client.send(ClientFrames.declineTrip(trip.id))
                measurements.add(.framesOut)
                measurements.add(.offersDeclined)
                return
            }
            if draw < settings.declineShare + settings.ignoreShare {
                measurements.add(.offersIgnored)
                return
            }
        }
        let client = state.withLock { state -> WebSocketClient? in
            guard case .roaming = state.job, state.client != nil else { return nil }
            state.begin(.accepting(trip: trip.id), seq: trip.seq)
            state.sending(trip.id)
            state.accept = (trip.id, MonotonicClock.nanoseconds())
            return state.client
        }
        guard let client else {
            measurements.add(.ignoredAlerts)
            return
        }
        measurements.raced(trip.id)
        client.send(ClientFrames.updateTrip(trip.id, status: "STARTED"))
        measurements.add(.framesOut)
    }

    /// A later state of a trip: the race won, or the trip canceled under us. A lost race is
    /// learnt from the error answering the accept, not from the new state the hub sends every
    /// offered driver: that state may come first, and the error, arriving later, would otherwise
    /// end the next race this driver enters.
    private func learn(_ trip: HubFrame.TripState, in city: CityModel) {
        state.withLock { state in
            if trip.driverID == self.id, state.awaiting.first == trip.id { state.awaiting.removeFirst() }
            if trip.id == state.job.trip, let seq = trip.seq, !state.seen.insert(seq) { return }
            switch state.job {
            case .accepting(let id) where id == trip.id && trip.driverID == self.id && trip.status == "STARTED":
                let here = city.nearestIntersection(to: state.vehicle.position)
                let pickUp = trip.pickUp.map { city.nearestIntersection(to: city.position(of: $0)) } ?? here
                let seen = state.seen
                state.begin(.toPickUp(trip: id, dropOff: trip.dropOff.map { city.nearestIntersection(to: city.position(of: $0)) } ?? here))
                state.seen = seen
                state.lastTrip = id
                state.vehicle.drive(to: pickUp, in: city)
            case .toPickUp(let id, _) where id == trip.id && (trip.status == "CANCELED" || trip.status == "COMPLETED"),
                .toDropOff(let id) where id == trip.id && (trip.status == "CANCELED" || trip.status == "COMPLETED"):
                state.dropTrip()
            default:
                break
            }
        }
    }
}
