import Foundation

/// How a waiting trip's offers run, round after round (docs/protocol.md §3.3).
///
/// Each round reaches `DispatchPolicy.initialRadius + (round − 1) × radiusStep` metres from the
/// pick-up, at most `DispatchPolicy.maxRadius`, and offers the trip to up to
/// `DispatchPolicy.driverCount` of the nearest available drivers there not asked before. An offer
/// lives `offerTimeout`; the trip ends without a driver `dispatchTimeout` after it was requested.
public struct OfferPolicy: Sendable, Equatable {
    /// How much farther, in metres, each round reaches than the one before.
    public var radiusStep: Double
    /// How long a driver has to accept or decline an offer.
    public var offerTimeout: Duration
    /// How long after its request a trip that no driver took ends as "no driver found".
    public var dispatchTimeout: Duration
    /// A driver whose last fix is older than this gets no offers of trips with a pick-up point.
    public var stalePositionAfter: Duration

    public init(
        radiusStep: Double = 1_000, offerTimeout: Duration = .seconds(15), dispatchTimeout: Duration = .seconds(120),
        stalePositionAfter: Duration = .seconds(30)
    ) {
        self.radiusStep = radiusStep
        self.offerTimeout = offerTimeout
        self.dispatchTimeout = dispatchTimeout
        self.stalePositionAfter = stalePositionAfter
    }
}

/// How long a driver takes to a point: straight-line distance × `detourFactor` ÷ speed, where the
/// speed is the driver's recent speed when it reported one of at least `minimumRecentSpeed`, else
/// `citySpeed`.
public struct ETAModel: Sendable, Equatable {
    /// Average speed in the city, km/h.
    public var citySpeed: Double
    /// Road distance over straight-line distance (streets are not straight lines).
    public var detourFactor: Double

    /// Below this (m/s: a car waiting at lights, or in a jam) a driver's own speed says little of
    /// how soon it arrives: the city speed is used instead.
    public static let minimumRecentSpeed = 2.0

    public init(citySpeed: Double = 25, detourFactor: Double = 1.3) {
        self.citySpeed = citySpeed
        self.detourFactor = detourFactor
    }

    /// Whole seconds, rounded up, to cover `distance` metres.
    public func seconds(toCover distance: Double, recentSpeed: Double? = nil) -> Int {
        let speed = recentSpeed.flatMap { $0 >= Self.minimumRecentSpeed ? $0 : nil } ?? citySpeed / 3.6
        guard speed > 0, distance > 0 else { return 0 }
        return Int((distance * detourFactor / speed).rounded(.up))
    }
}

/// When the rider hears that its driver is arriving and has arrived, and where "picked up" may be
/// said.
public struct PickUpPolicy: Sendable, Equatable {
    /// Within this many metres of the pick-up, the driver is arriving; waiting there, arrived.
    public var arrivalRadius: Double
    /// `IN_PROGRESS` is refused farther than this from the pick-up; 0 switches the check off.
    public var pickUpRadius: Double

    /// How long a driver stays within `arrivalRadius` (over two fixes at least) before it counts
    /// as arrived, in microseconds.
    public static let arrivalDwell: Int64 = 5_000_000
    /// Fastest reported speed (m/s) of a driver that counts as waiting.
    public static let waitingSpeed = 2.0

    public init(arrivalRadius: Double = 50, pickUpRadius: Double = 150) {
        self.arrivalRadius = arrivalRadius
        self.pickUpRadius = pickUpRadius
    }
}

extension Duration {
    /// The duration in whole microseconds, as `Timestamp` counts.
    var microseconds: Int64 {
        components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    }
}

/// Why a driver's offer of a trip that still waits ended (`trip.offer_withdrawn`).
public enum WithdrawalReason: String, Sendable, Codable, CaseIterable {
    /// Its `offerTimeout` passed.
    case expired
    /// The driver declined it (`decline.trip`).
    case declined
    /// The driver is no longer available: busy with a trip, offline, or its position went stale.
    case unavailable
}

/// The offer rounds of one waiting trip: which round it is in, whom it asked, which offers are
/// live. Pure bookkeeping (no clock, no driver map), so each rule is checked in a table;
/// `TripActor` owns one while its trip is `REQUESTED` and hands it the time and a search.
///
/// - A trip with a pick-up point goes round by round (`OfferPolicy`): a round ends when none of
///   its offers is live any more (each expired, was declined or withdrawn), and the next one starts
///   at once, reaching one `radiusStep` farther. A round that finds nobody to ask is skipped at
///   once while the radius can still grow. At the largest radius, once every driver found there
///   was asked and no offer is live, no driver is left in range and the trip ends without one; a
///   trip that never found anyone to ask keeps looking there until its deadline.
///   While a round has made fewer than `driverCount` offers, drivers who became available within
///   its radius since (late drivers) are offered the trip too.
/// - A trip without a pick-up point is offered to every available driver, as the reference app
///   alerted all drivers, and to each driver who becomes available later. Its offers do not expire.
/// - Every driver is asked at most once per trip: a decline or an expiry is final.
/// - `dispatchTimeout` after the request (`deadline`), the trip ends without a driver.
struct OfferRounds: Sendable, Equatable {
    /// One live offer.
    struct Offer: Sendable, Equatable {
        let driverID: Int
        let round: Int
        /// When it expires; nil for a trip without a pick-up point.
        let expires: Timestamp?
    }

    /// A driver the search found, nearest first.
    struct Candidate: Sendable, Equatable {
        let connection: ConnectionID
        let driverID: Int
        /// Metres to the pick-up; nil without one.
        let distance: Double?
    }

    /// What one step decided.
    struct Step: Sendable, Equatable {
        /// Offers that ended, and why (the drivers are told).
        var withdrawn: [(connection: ConnectionID, reason: WithdrawalReason)] = []
        /// New offers, each with the candidate it goes to.
        var offers: [(candidate: Candidate, offer: Offer)] = []
        /// The round the trip moved to, when it moved (the rider is told).
        var newRound: Int?
        /// The trip ends without a driver: its deadline passed, or every driver in range was asked
        /// and none is left to ask.
        var timedOut = false

        static func == (lhs: Step, rhs: Step) -> Bool {
            lhs.withdrawn.elementsEqual(rhs.withdrawn) { $0.connection == $1.connection && $0.reason == $1.reason }
                && lhs.offers.elementsEqual(rhs.offers) { $0.candidate == $1.candidate && $0.offer == $1.offer }
                && lhs.newRound == rhs.newRound && lhs.timedOut == rhs.timedOut
        }
    }

    /// Finds available drivers not in `excluding` (driver ids), nearest first, at most `limit`:
    /// within `radius` metres of the pick-up, or anywhere when `radius` is nil (no pick-up point).
    typealias Search = (_ radius: Double?, _ excluding: Set<Int>, _ limit: Int) -> [Candidate]

    let search: DispatchPolicy
    let policy: OfferPolicy
    let hasPickUp: Bool
    /// When the trip ends without a driver: its request plus `dispatchTimeout`.
    let deadline: Timestamp
    /// 0 before the first step.
    private(set) var round = 0
    /// Offers made in the current round (live or not).
    private(set) var madeThisRound = 0
    private(set) var live: [ConnectionID: Offer] = [:]
    /// Every driver the trip was ever offered to.
    private(set) var asked: Set<Int> = []

    init(search: DispatchPolicy, policy: OfferPolicy, hasPickUp: Bool, requestedAt: Timestamp) {
        self.search = search
        self.policy = policy
        self.hasPickUp = hasPickUp
        self.deadline = Timestamp(microseconds: requestedAt.microseconds + policy.dispatchTimeout.microseconds)
    }

    /// How far the current round reaches, in metres.
    var radius: Double {
        let grown = search.initialRadius + Double(max(round, 1) - 1) * max(policy.radiusStep, 0)
        return min(grown, search.maxRadius)
    }

    /// The live offers' connections, in a stable order.
    var holders: [ConnectionID] { live.keys.sorted { $0.rawValue < $1.rawValue } }

    /// One step at `now`: ends the offers that expired and those whose drivers are `unavailable`,
    /// then moves to the next round when the current one has no live offer left, and makes the
    /// offers the current round has room for. Past the deadline it only reports `timedOut`; it
    /// reports it too when no driver is left in range (see the type).
    mutating func advance(now: Timestamp, unavailable: Set<ConnectionID> = [], search find: Search) -> Step {
        var step = Step()
        guard now < deadline else {
            step.timedOut = true
            return step
        }
        for connection in holders {
            guard let offer = live[connection] else { continue }
            if let expires = offer.expires, expires <= now {
                live[connection] = nil
                step.withdrawn.append((connection, .expired))
            } else if unavailable.contains(connection) {
                live[connection] = nil
                step.withdrawn.append((connection, .unavailable))
            }
        }
        // Drivers first asked in this step: each of their connections gets the offer.
        var newlyAsked: Set<Int> = []
        guard hasPickUp else {
            if round == 0 { round = 1 }
            for candidate in find(nil, asked, Int.max) { make(candidate, expires: nil, newlyAsked: &newlyAsked, into: &step) }
            return step
        }
        let startRound = round
        if round == 0 { round = 1 }
        if live.isEmpty, madeThisRound > 0 { nextRound() }
        while true {
            let room = search.driverCount - madeThisRound
            if room > 0 {
                let expires = Timestamp(microseconds: min(now.microseconds + policy.offerTimeout.microseconds, deadline.microseconds))
                for candidate in find(radius, asked, room) where madeThisRound < search.driverCount || newlyAsked.contains(candidate.driverID) {
                    make(candidate, expires: expires, newlyAsked: &newlyAsked, into: &step)
                }
            }
            // A round that found nobody is skipped while the radius can still grow.
            guard madeThisRound == 0, radius < search.maxRadius else { break }
            nextRound()
        }
        // At the largest radius with no offer live and nobody new to ask, while drivers in range
        // were asked (each declined, let it expire or became unavailable): no driver is left.
        // A request that never found anyone keeps looking until its deadline instead (late drivers).
        if live.isEmpty, madeThisRound == 0, !asked.isEmpty, radius >= search.maxRadius {
            step.timedOut = true
            return step
        }
        if round != startRound { step.newRound = round }
        return step
    }

    /// Makes a live offer to `candidate` outside any step (a trip without a pick-up point, taken up
    /// by a driver as it connects: `TripActor.holdOffer`); false when its driver was asked before.
    mutating func hold(_ candidate: Candidate) -> Bool {
        guard !hasPickUp, !asked.contains(candidate.driverID) else { return false }
        if round == 0 { round = 1 }
        asked.insert(candidate.driverID)
        live[candidate.connection] = Offer(driverID: candidate.driverID, round: round, expires: nil)
        return true
    }

    /// A driver declines: its live offers end (their connections are returned, possibly none).
    mutating func decline(driverID: Int) -> [ConnectionID] {
        let mine = holders.filter { live[$0]?.driverID == driverID }
        for connection in mine { live[connection] = nil }
        return mine
    }

    /// Whether `driverID` holds a live offer.
    func holdsOffer(_ driverID: Int) -> Bool {
        live.values.contains { $0.driverID == driverID }
    }

    /// A connection that left: its offer ends without a word (there is no one to tell).
    mutating func forget(_ connection: ConnectionID) {
        live[connection] = nil
    }

    private mutating func nextRound() {
        round += 1
        madeThisRound = 0
    }

    /// Offers the trip to a candidate: a driver never asked before, or asked in this same step (its
    /// other connections). `madeThisRound` counts drivers, not connections.
    private mutating func make(_ candidate: Candidate, expires: Timestamp?, newlyAsked: inout Set<Int>, into step: inout Step) {
        guard live[candidate.connection] == nil else { return }
        if asked.contains(candidate.driverID) {
            guard newlyAsked.contains(candidate.driverID) else { return }
        } else {
            asked.insert(candidate.driverID)
            newlyAsked.insert(candidate.driverID)
            madeThisRound += 1
        }
        let offer = Offer(driverID: candidate.driverID, round: round, expires: expires)
        live[candidate.connection] = offer
        step.offers.append((candidate, offer))
    }
}

/// What a driver is told with an offer of a trip with a pick-up point (the frame's `offer`).
public struct OfferTerms: Sendable, Equatable, Codable {
    public let round: Int
    /// Straight-line metres from the driver to the pick-up.
    public let distance: Double
    /// Seconds to the pick-up (`ETAModel`).
    public let eta: Int
    public let expires: Timestamp
    /// Seconds from the offer to its expiry.
    public let expiresIn: Double

    public init(round: Int, distance: Double, eta: Int, expires: Timestamp, expiresIn: Double) {
        self.round = round
        self.distance = distance
        self.eta = eta
        self.expires = expires
        self.expiresIn = expiresIn
    }
}

/// A driver's offer of a trip that still waits ended (`trip.offer_withdrawn`).
public struct OfferWithdrawal: Sendable, Equatable, Codable {
    public let tripID: UUID
    public let reason: WithdrawalReason
    /// The trip's `seq` at the time; not sent (a withdrawal is no event of the trip's own).
    public let seq: Int64

    public init(tripID: UUID, reason: WithdrawalReason, seq: Int64) {
        self.tripID = tripID
        self.reason = reason
        self.seq = seq
    }
}

/// Something the hub tells a trip's group besides its states and locations: a new offer round,
/// the driver arriving at the pick-up and waiting there. Each carries the trip's next `seq`.
public struct TripNotice: Sendable, Equatable, Codable {
    public enum Kind: Sendable, Equatable, Codable {
        /// The trip is offered in round `round`, reaching `radius` metres from the pick-up.
        case searching(round: Int, radius: Double)
        /// The driver came within `PickUpPolicy.arrivalRadius` of the pick-up.
        case arriving(distance: Double, eta: Int)
        /// The driver waits within `arrivalRadius` of the pick-up.
        case arrived(distance: Double)
    }

    public let tripID: UUID
    public let driverID: Int?
    public let kind: Kind
    public let seq: Int64

    public init(tripID: UUID, driverID: Int?, kind: Kind, seq: Int64) {
        self.tripID = tripID
        self.driverID = driverID
        self.kind = kind
        self.seq = seq
    }
}

/// How far the driver of a `STARTED` trip is from its pick-up, sent with each of its locations.
public struct PickUpProgress: Sendable, Equatable, Codable {
    /// Straight-line metres.
    public let distance: Double
    /// Seconds (`ETAModel`).
    public let eta: Int

    public init(distance: Double, eta: Int) {
        self.distance = distance
        self.eta = eta
    }
}

/// Watches a `STARTED` trip's driver approach its pick-up: the ETA with each fix, "arriving" the
/// first time it comes within `arrivalRadius`, "arrived" once it has waited there: at least two
/// fixes within the radius over `PickUpPolicy.arrivalDwell`, the latest one slower than
/// `waitingSpeed` (or without a speed). Each notice is given once. Pure, so it is checked in a table.
struct ArrivalWatch: Sendable, Equatable {
    private(set) var arrivingSent = false
    private(set) var arrivedSent = false
    /// When the driver's current stay within the radius began, and how many fixes it has had.
    private var insideSince: Timestamp?
    private var fixesInside = 0
    /// The speeds of the driver's latest fixes that had one, newest last.
    private var speeds: [Double] = []

    static let speedsKept = 5

    /// The driver's recent speed: the mean of its latest reported speeds.
    var recentSpeed: Double? {
        speeds.isEmpty ? nil : speeds.reduce(0, +) / Double(speeds.count)
    }

    /// Takes a fix `distance` metres from the pick-up at `now`; returns the progress to send with it
    /// and the notices it brings.
    mutating func observe(
        distance: Double, speed: Double?, at now: Timestamp, policy: PickUpPolicy, eta model: ETAModel
    ) -> (progress: PickUpProgress, notices: [TripNotice.Kind]) {
        if let speed {
            speeds.append(speed)
            if speeds.count > Self.speedsKept { speeds.removeFirst(speeds.count - Self.speedsKept) }
        }
        let progress = PickUpProgress(distance: distance, eta: model.seconds(toCover: distance, recentSpeed: recentSpeed))
        var notices: [TripNotice.Kind] = []
        guard distance <= policy.arrivalRadius else {
            insideSince = nil
            fixesInside = 0
            return (progress, notices)
        }
        if insideSince == nil { insideSince = now }
        fixesInside += 1
        if !arrivingSent {
            arrivingSent = true
            notices.append(.arriving(distance: distance, eta: progress.eta))
        }
        let waiting = (speed ?? 0) <= PickUpPolicy.waitingSpeed
        if !arrivedSent, fixesInside >= 2, waiting, let since = insideSince, now.microseconds - since.microseconds >= PickUpPolicy.arrivalDwell {
            arrivedSent = true
            notices.append(.arrived(distance: distance))
        }
        return (progress, notices)
    }
}
