import BenchSupport
import Histogram
import SocketClient
import Synchronization

/// Everything a run counts, shared by every simulated client (any thread).
///
/// Latencies go into HdrHistograms in microseconds, and only for messages *sent* inside the
/// measured window (after the warm-up, before the end), so the ramp-up and the drain do not
/// count. Counters run for the whole run; the report takes differences across the window.
final class Measurements: Sendable {
    /// The kinds of latency measured.
    enum Kind: Int, CaseIterable {
        /// Driver's `update.location` scheduled → the rider's `trip.location` (or the echo's round trip).
        case location
        /// Rider's `create.trip` sent → a driver's alert.
        case alert
        /// The winning driver's `update.trip` STARTED sent → the rider's STARTED state.
        case accept
        /// The driver's `update.trip` IN_PROGRESS (its fix tick's due time) → the rider's IN_PROGRESS state.
        case progress
        /// The driver's `update.trip` COMPLETED (its fix tick's due time) → the rider's COMPLETED state.
        case complete
        /// The rider's `cancel.trip` sent → its CANCELED state.
        case cancel
        /// The rider's `create.trip` sent (or due) → its CANCELED state with `no_driver_found`.
        case noDriver
    }

    /// Monotonic counters.
    enum Counter: Int, CaseIterable {
        case framesOut, framesIn, locationsSent, locationErrors, tripsCompleted, unacceptedTrips, ignoredAlerts
        case connectionFailures, unexpectedCloses, connectionsOpen
        /// `trip.location` frames the riders received; error frames of any code; sockets that
        /// opened again after a close; sockets closed on purpose (`--drop-every`).
        case locationsReceived, errorFrames, reconnects, drops
        /// `create.trip` sent; with `--trip-rate`, requests due while no rider was free.
        case tripRequests, tripRequestsSkipped
        /// The trip changes the hub acknowledged to their riders, each `(trip, seq)` once: the
        /// REQUESTED, STARTED, IN_PROGRESS and CANCELED states of a rider's own trip
        /// (COMPLETED is `tripsCompleted`).
        case tripCreates, tripAccepts, tripProgress, tripCancels
        /// Offer rounds (docs/protocol.md §3.3, §3.6), as the drivers saw them: offers received
        /// (a REQUESTED state of another rider's trip), those of round 2 or later; offers declined
        /// (`decline.trip` sent) and let expire on purpose (`--decline-share`, `--ignore-share`);
        /// `trip.offer_withdrawn` by reason; and the decided trip's new state (from STARTED on,
        /// or CANCELED) that reached a driver not driving it, as every offer holder hears it.
        case offersReceived, offersLaterRound, offersDeclined, offersIgnored
        case withdrawnExpired, withdrawnDeclined, withdrawnUnavailable, withdrawnOther
        case offersDecided
        /// `trip.searching` frames the riders received (each a round from 2 on).
        case searchingRounds
        /// Requests placed where no driver is (`--unserved-share`).
        case unservedRequests
        /// How requests left REQUESTED, as their riders saw it: accepted; ended `no_driver_found`
        /// (those placed where no driver is, and the others); canceled by the rider (its accept
        /// timeout, a silent trip, or `--unserved-wait` for an unserved one, also counted in
        /// `unservedGivenUp`); failed (an error answered it, or the hub never echoed it).
        case requestsAccepted, noDriverFound, noDriverFoundServed, requestsCanceled, requestsFailed, unservedGivenUp
        /// Requests that left REQUESTED as accepted, canceled or without a driver, and the
        /// microseconds they waited there in all (from `create.trip` sent or due): a waiting trip
        /// is ticked by the hub's dispatch timer twice a second.
        case requestsDecided, requestWaitMicroseconds
    }

    private struct Histograms {
        var total = Kind.allCases.map { _ in Latency.emptyHistogram() }
        /// Location latencies since the last progress line.
        var recentLocation = Latency.emptyHistogram()
        /// Location latencies received while the log-in flood was on, and while it was off
        /// (filled only in runs with a flood).
        var locationWithLogins = Latency.emptyHistogram()
        var locationWithoutLogins = Latency.emptyHistogram()
    }

    private struct Races {
        /// Trips at least one driver tried to accept.
        var raced: Set<String> = []
        /// The drivers seen as a trip's driver in its states from STARTED on.
        var winners: [String: Set<Int>] = [:]
    }

    /// What happened on one hub node (`--url`): clients that started there, and reconnections
    /// that took a client from it to another node, or to it from another.
    struct NodeTally: Sendable, Equatable {
        var clientsStarted = 0
        var movedAway = 0
        var movedIn = 0
    }

    private let histograms = Mutex(Histograms())
    private let counters = Mutex([Int](repeating: 0, count: Counter.allCases.count))
    private let errors = Mutex<[String: Int]>([:])
    private let failureReasons = Mutex<[String: Int]>([:])
    private let races = Mutex(Races())
    /// The measured window in monotonic nanoseconds; 0 while unset.
    private let windowStart = Atomic<UInt64>(0)
    private let windowEnd = Atomic<UInt64>(0)

    /// 0: no log-in flood in this run; 1: a flood, off now; 2: a flood, on now.
    private let loginFlood = Atomic<Int>(0)

    private let nodes: Mutex<[NodeTally]>

    /// Counts for `nodes` hub nodes.
    init(nodes: Int = 1) {
        self.nodes = Mutex([NodeTally](repeating: NodeTally(), count: max(1, nodes)))
    }

    /// A client starts on `node`.
    func started(on node: Int) {
        nodes.withLock { $0[node].clientsStarted += 1 }
    }

    /// A client that was on `from` (or was to start there) reconnected on `to`, another node.
    func moved(from: Int, to: Int) {
        nodes.withLock { nodes in
            nodes[from].movedAway += 1
            nodes[to].movedIn += 1
        }
    }

    /// By node, in `--url` order.
    var nodeTallies: [NodeTally] { nodes.withLock { $0 } }

    func startWindow(at time: UInt64) { windowStart.store(time, ordering: .releasing) }
    func endWindow(at time: UInt64) { windowEnd.store(time, ordering: .releasing) }

    /// Whether something sent at `time` belongs to the measured window.
    func inWindow(_ time: UInt64) -> Bool {
        let start = windowStart.load(ordering: .acquiring)
        let end = windowEnd.load(ordering: .acquiring)
        return start != 0 && time >= start && (end == 0 || time < end)
    }

    /// Records `now - sentAt` if `sentAt` lies in the window.
    func latency(_ kind: Kind, sentAt: UInt64, now: UInt64 = MonotonicClock.nanoseconds()) {
        guard inWindow(sentAt) else { return }
        histograms.withLock { histograms in
            Latency.record(from: sentAt, to: now, in: &histograms.total[kind.rawValue])
            if kind == .location {
                Latency.record(from: sentAt, to: now, in: &histograms.recentLocation)
                switch loginFlood.load(ordering: .relaxed) {
                case 1: Latency.record(from: sentAt, to: now, in: &histograms.locationWithoutLogins)
                case 2: Latency.record(from: sentAt, to: now, in: &histograms.locationWithLogins)
                default: break
                }
            }
        }
    }

    /// Whether the log-in flood is on now.
    var loginFloodOn: Bool { loginFlood.load(ordering: .relaxed) == 2 }

    /// Switches the log-in flood on or off; from the first call on, location samples are also
    /// filed under the flood's state when they arrive.
    func setLoginFlood(on: Bool) { loginFlood.store(on ? 2 : 1, ordering: .relaxed) }

    /// Location latency with the log-in flood on and with it off.
    func locationByLoginFlood() -> (with: LatencySummary, without: LatencySummary) {
        histograms.withLock { (LatencySummary($0.locationWithLogins), LatencySummary($0.locationWithoutLogins)) }
    }

    func histogram(_ kind: Kind) -> Histogram<UInt64> {
        histograms.withLock { $0.total[kind.rawValue] }
    }

    /// The location latency since the last call, and a fresh start for the next.
    func takeRecentLocation() -> LatencySummary {
        histograms.withLock { histograms in
            defer { histograms.recentLocation.reset() }
            return LatencySummary(histograms.recentLocation)
        }
    }

    func add(_ counter: Counter, _ amount: Int = 1) {
        counters.withLock { $0[counter.rawValue] += amount }
    }

    /// Every counter's value, indexed by `Counter.rawValue`.
    var counterValues: [Int] { counters.withLock { $0 } }

    subscript(_ counter: Counter) -> Int {
        counters.withLock { $0[counter.rawValue] }
    }

    func error(code: String, requestType: String?) {
        errors.withLock { $0[code, default: 0] += 1 }
        add(.errorFrames)
        if requestType == "update.location" { add(.locationErrors) }
    }

    var errorCounts: [String: Int] { errors.withLock { $0 } }

    /// A connection attempt ended: opened (nil) or failed.
    func connectionOutcome(_ failure: WebSocketClient.OpenError?) {
        guard let failure else {
            add(.connectionsOpen)
            return
        }
        add(.connectionFailures)
        failureReasons.withLock { $0[failure.label, default: 0] += 1 }
    }

    var connectionFailureReasons: [String: Int] { failureReasons.withLock { $0 } }

    /// A driver sent `update.trip` STARTED for `trip`.
    func raced(_ trip: String) {
        _ = races.withLock { $0.raced.insert(trip) }
    }

    /// A trip state was seen by some connection; from STARTED on, its driver is a winner.
    func observe(_ state: HubFrame.TripState) {
        guard let driver = state.driverID, ["STARTED", "IN_PROGRESS", "COMPLETED"].contains(state.status) else { return }
        _ = races.withLock { $0.winners[state.id, default: []].insert(driver) }
    }

    /// Trips raced, winners summed over them, and the trips with several winners or none.
    var raceResults: (trips: Int, winners: Int, severalWinners: Int, noWinner: Int) {
        races.withLock { races in
            let counts = races.raced.map { races.winners[$0]?.count ?? 0 }
            return (counts.count, counts.reduce(0, +), counts.filter { $0 > 1 }.count, counts.filter { $0 == 0 }.count)
        }
    }
}
