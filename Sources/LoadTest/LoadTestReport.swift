import BenchSupport
import Foundation

/// Everything one `taxi-hub loadtest` run measured: written as JSON (keys in snake case, e.g.
/// `location_latency_ms`) and printed as Markdown tables.
public struct LoadTestReport: Codable, Sendable {
    /// The run's settings, as given.
    public struct Settings: Codable, Sendable {
        /// The first hub.
        public let url: String
        /// Every hub (`--url`, given once per node), in order.
        public let urls: [String]
        public let drivers: Int
        public let riders: Int
        public let gpsHz: Double
        public let durationS: Double
        public let warmupS: Double
        public let generatorThreads: Int
        public let sourceAddresses: [String]
        /// Trip requests per second on the schedule (0: each rider again after `rider_pause_s`).
        public let tripRate: Double
        /// Speed on a trip, m/s (0: each driver's own).
        public let tripSpeed: Double
        public let tripBlocks: Int
        public let riderPauseS: Double
        /// Shares of the offers declined and let expire, and of the requests placed where no
        /// driver is; seconds a rider waits for such a request to end (`--unserved-wait`).
        public let declineShare: Double
        public let ignoreShare: Double
        public let unservedShare: Double
        public let unservedWaitS: Double
    }

    /// Offer rounds (docs/protocol.md §3.3–3.6) inside the measured window(s), as the simulated
    /// drivers and riders saw them, and what they cost per request sent in the window.
    public struct Dispatch: Codable, Sendable, Equatable {
        /// `create.trip` sent in the window, and those placed where no driver is.
        public let requestsSent: Int
        public let unservedRequests: Int
        /// Offers the drivers received (REQUESTED states of other riders' trips), those of round
        /// 2 or later, those they declined (`decline.trip` sent) and let expire on purpose.
        public let offersReceived: Int
        public let offersLaterRound: Int
        public let offersDeclined: Int
        public let offersLetExpire: Int
        /// `trip.offer_withdrawn` the drivers received, by reason (`expired`, `declined`,
        /// `unavailable`; another reason under its own name).
        public let withdrawals: [String: Int]
        /// The decided trip's new state (from STARTED on, or CANCELED) that reached a driver not
        /// driving it: every driver still holding the offer hears it, the losers of the race too.
        public let decidedToHolders: Int
        /// `trip.searching` the riders received: rounds from 2 on.
        public let searchingRounds: Int
        /// Requests that ended `CANCELED` with `no_driver_found`: of those placed where no driver
        /// is, and of the others.
        public let noDriverFound: Int
        public let noDriverFoundServed: Int
        /// Unserved requests the rider canceled itself after `--unserved-wait` (the hub had not ended them).
        public let unservedGivenUp: Int
        /// Per request sent in the window: offers; messages to drivers (offers, withdrawals and
        /// decided states to holders).
        public let offersPerRequest: Double
        public let messagesToDriversPerRequest: Double
        /// Mean seconds a request waited in REQUESTED (those that left it in the window: accepted,
        /// canceled or without a driver).
        public let meanWaitS: Double
        /// The hub's dispatch ticks of one waiting trip, per request, estimated: one as it is
        /// requested, one per decline, and two a second while it waits (`DispatchService` ticks
        /// every waiting trip twice a second; the timer itself runs twice a second whatever the load).
        public let tripTicksPerRequest: Double
        /// Hub CPU in the window per request sent in it, milliseconds (all of the hub's work,
        /// the fixes too: compare runs with and without offer rounds).
        public let hubCpuMsPerRequest: Double
    }

    /// How every request of the load phases (whole phases, not only the window) left REQUESTED,
    /// and those still waiting when each phase ended: `sent` is the sum of the others.
    public struct RequestOutcomes: Codable, Sendable, Equatable {
        public let sent: Int
        public let accepted: Int
        public let noDriverFound: Int
        public let noDriverFoundServed: Int
        /// Canceled by the rider: its accept timeout, a silent trip, or `--unserved-wait`.
        public let canceled: Int
        /// Answered with an error, or never echoed by the hub.
        public let failed: Int
        public let waitingAtEnd: Int
        /// How long the oldest request still waiting at the end had waited, seconds.
        public let oldestWaitingS: Double
    }

    /// The trip changes inside the measured window(s), as the riders saw them acknowledged
    /// (each `(trip, seq)` of a rider's own trip once), and the requests the generator sent.
    public struct TripChanges: Codable, Sendable, Equatable {
        /// `create.trip` sent in the window.
        public let requestsSent: Int
        /// With `--trip-rate`: requests due in the window while no rider was free (not sent).
        public let requestsSkipped: Int
        /// REQUESTED, STARTED (the accepts), IN_PROGRESS, COMPLETED and CANCELED states.
        public let creates: Int
        public let accepts: Int
        public let inProgress: Int
        public let completed: Int
        public let canceled: Int
        /// All five, and per second of the window.
        public let total: Int
        public let perS: Double
    }

    /// The hubs' durable commits over the window (`taxihub_commits_total`,
    /// `taxihub_committed_changes_total`, `taxihub_commit_microseconds_total`); absent when no
    /// hub has those counters (a hub from before durable acknowledgements).
    public struct HubCommits: Codable, Sendable, Equatable {
        public let commits: Int
        /// Trip changes and sign-ups those commits made durable.
        public let changes: Int
        public let commitsPerS: Double
        public let changesPerCommit: Double
        /// Time the hub spent in them: the mean per commit, and the share of the window.
        public let meanCommitMs: Double
        public let busyShare: Double
    }

    /// One hub node (one `--url`) in the load phases, summed over rounds.
    public struct Node: Codable, Sendable, Equatable {
        public let url: String
        /// Simulated clients that started on this node (client `i` on node `i % n`).
        public let clientsStarted: Int
        /// Reconnections that took a client from this node (closed, or never opened there) to
        /// another; and those that brought a client here from another node.
        public let reconnectsMovedAway: Int
        public let reconnectsMovedIn: Int
        /// From this node's `/metrics`: CPU seconds in the window, resident memory at its end;
        /// nil (absent from the JSON) when it did not answer (a dead node).
        public let hubCpuSeconds: Double?
        public let hubRssBytes: Int?
    }

    /// Accept races: trips at least one driver tried to accept, and the distinct drivers seen
    /// holding each of them (summed); one winner per trip means `winners == trips`.
    public struct Races: Codable, Sendable, Equatable {
        public let trips: Int
        public let winners: Int
        public let tripsWithSeveralWinners: Int
        public let tripsWithoutWinner: Int
    }

    /// Distinct `(trip, seq)` the simulated clients received (`--record`), by kind.
    public struct Acknowledged: Codable, Sendable, Equatable {
        public var events = 0
        public var locations = 0
        /// Events by trip status.
        public var byStatus: [String: Int] = [:]
    }

    /// The same frames at the same rate through the bare echo route.
    public struct Baseline: Codable, Sendable {
        /// Echo round trip of the drivers' frames.
        public let locationLatencyMs: LatencySummary
        public let messagesInPerS: Double
        public let messagesOutPerS: Double
        public let hubCpuSeconds: Double
        public let hubCpuUsPerMessage: Double
        public let hubCpuUsPerFrame: Double
        public let connectionFailures: Int
    }

    /// One round of a run with `--rounds`: the load's window, then the echo's.
    public struct Round: Codable, Sendable {
        public let hubCpuUsPerMessage: Double
        public let locationP99Ms: Double
        /// The generator's own CPU time in the load's window: when it grows from round to round
        /// at the same load, the machine got slower.
        public let generatorCpuSeconds: Double
        public let echoCpuUsPerMessage: Double?
        /// The echo's round-trip p99.
        public let echoP99Ms: Double?
        public let cpuPerMessageRatio: Double?
        public let alertP99Ms: Double
        public let acceptP99Ms: Double
        /// Trip changes per second in this round's window, and the hub's commits then (nil: no
        /// commit counters).
        public let tripChangesPerS: Double
        public let commitsPerS: Double?
        public let changesPerCommit: Double?
    }

    public let settings: Settings
    public let machine: Machine
    /// Driver's scheduled fix → the rider's `trip.location`.
    public var locationLatencyMs = LatencySummary(Latency.emptyHistogram())
    /// Rider's `create.trip` → each driver alert.
    public var alertLatencyMs = LatencySummary(Latency.emptyHistogram())
    /// Winner's `update.trip` STARTED → the rider's STARTED state.
    public var acceptLatencyMs = LatencySummary(Latency.emptyHistogram())
    /// Driver's `update.trip` IN_PROGRESS and COMPLETED (due time of the fix tick that sent them)
    /// → the rider's state; rider's `cancel.trip` → its CANCELED state.
    public var inProgressLatencyMs = LatencySummary(Latency.emptyHistogram())
    public var completedLatencyMs = LatencySummary(Latency.emptyHistogram())
    public var cancelLatencyMs = LatencySummary(Latency.emptyHistogram())
    /// Rider's `create.trip` (sent or due) → its CANCELED state with `no_driver_found`.
    public var noDriverFoundLatencyMs = LatencySummary(Latency.emptyHistogram())
    /// Offer rounds in the window(s), and how every request ended.
    public var dispatch = Dispatch(
        requestsSent: 0, unservedRequests: 0, offersReceived: 0, offersLaterRound: 0, offersDeclined: 0, offersLetExpire: 0, withdrawals: [:],
        decidedToHolders: 0, searchingRounds: 0, noDriverFound: 0, noDriverFoundServed: 0, unservedGivenUp: 0, offersPerRequest: 0,
        messagesToDriversPerRequest: 0, meanWaitS: 0, tripTicksPerRequest: 0, hubCpuMsPerRequest: 0
    )
    public var requestOutcomes = RequestOutcomes(
        sent: 0, accepted: 0, noDriverFound: 0, noDriverFoundServed: 0, canceled: 0, failed: 0, waitingAtEnd: 0, oldestWaitingS: 0
    )
    /// Trip changes inside the window(s).
    public var tripChanges = TripChanges(
        requestsSent: 0, requestsSkipped: 0, creates: 0, accepts: 0, inProgress: 0, completed: 0, canceled: 0, total: 0, perS: 0
    )
    /// The hubs' durable commits over the window(s); nil (absent): the hub has no commit counters.
    public var hubCommits: HubCommits?
    /// Location updates sent and not answered with an error, per second of the window.
    public var locationUpdatesPerS = 0.0
    /// Location updates the schedule asked for, per second.
    public var locationUpdatesOfferedPerS = 0.0
    /// Frames from the hub to the generator, and from the generator to the hub, per second.
    public var messagesInPerS = 0.0
    public var messagesOutPerS = 0.0
    /// Error frames by code, whole run (losing an accept race is `trip_taken`).
    public var errors: [String: Int] = [:]
    /// Connections that failed to open or closed before the end.
    public var connectionFailures = 0
    public var connectionFailureReasons: [String: Int] = [:]
    public var races = Races(trips: 0, winners: 0, tripsWithSeveralWinners: 0, tripsWithoutWinner: 0)
    public var tripsCompleted = 0
    /// Trips nobody accepted before the rider's accept timeout.
    public var tripsUnaccepted = 0
    /// Alerts a driver let pass because it was already racing for, or driving, another trip.
    public var alertsIgnored = 0
    /// Sockets that opened again after closing, and sockets closed on purpose (`--drop-every`),
    /// whole run. After each reconnection a driver completes its last trip again in case a
    /// restarted hub lost that, so reconnections add `invalid_transition` or `not_found` errors.
    public var reconnects = 0
    public var drops = 0
    /// With `--record`: the distinct trip events and locations the hub acknowledged to the clients.
    public var acknowledged: Acknowledged?
    /// Hub CPU time over the window (from its `/metrics`), per client message, per frame either way.
    /// Hub CPU seconds and resident memory are summed over the nodes that answered `/metrics`;
    /// `nodes` has each node's share.
    public var hubCpuSeconds = 0.0
    public var hubCpuUsPerMessage = 0.0
    public var hubCpuUsPerFrame = 0.0
    public var hubRssBytes = 0
    public var generatorCpuSeconds = 0.0
    public var baseline: Baseline?
    /// Hub CPU per client message under the hub load over the same with the echo route.
    public var cpuPerMessageRatio: Double?
    public var cpuPerFrameRatio: Double?
    public var idle: IdleResults?
    /// With `--login-rate`: the log-ins' answers and the location latency with and without them.
    public var logins: LoginFloodResults?
    /// Each round on its own; the fields above sum every round.
    public var rounds: [Round] = []
    /// How many hubs (`--url`s) the run used.
    public var hubCount: Int
    /// Each hub of the load phases, in `--url` order (one entry for a single hub).
    public var nodes: [Node] = []
    public var warnings: [String] = []

    init(settings: LoadTestSettings) {
        self.settings = Settings(
            url: settings.url, urls: settings.urls, drivers: settings.drivers, riders: settings.riders, gpsHz: settings.gpsHz, durationS: settings.duration,
            warmupS: settings.warmup, generatorThreads: settings.threads, sourceAddresses: settings.sourceAddresses,
            tripRate: settings.tripRate, tripSpeed: settings.tripSpeed, tripBlocks: settings.tripBlocks, riderPauseS: settings.riderPause,
            declineShare: settings.declineShare, ignoreShare: settings.ignoreShare, unservedShare: settings.unservedShare,
            unservedWaitS: settings.unservedWait
        )
        machine = Machine.current()
        hubCount = settings.urls.count
    }

    /// Records the rounds of a run, each a load phase and (with `--baseline`) the echo phase after
    /// it: every round on its own, and their sum as the run's results.
    mutating func record(loads: [PhaseResults], baselines: [PhaseResults]) {
        for (index, load) in loads.enumerated() {
            let echo = baselines.indices.contains(index) ? baselines[index] : nil
            rounds.append(
                Round(
                    hubCpuUsPerMessage: load.hubMicrosecondsPerMessage, locationP99Ms: LatencySummary(load.location).p99,
                    generatorCpuSeconds: load.generatorCPUSeconds, echoCpuUsPerMessage: echo?.hubMicrosecondsPerMessage,
                    echoP99Ms: echo.map { LatencySummary($0.location).p99 },
                    cpuPerMessageRatio: echo.map { load.hubMicrosecondsPerMessage / $0.hubMicrosecondsPerMessage },
                    alertP99Ms: LatencySummary(load.alert).p99, acceptP99Ms: LatencySummary(load.accept).p99,
                    tripChangesPerS: Double(load.tripChanges) / load.seconds,
                    commitsPerS: load.hubCommits.map { $0.commits / load.seconds },
                    changesPerCommit: load.hubCommits.flatMap { $0.commits > 0 ? $0.changes / $0.commits : nil }
                )
            )
        }
        logins = loads.last?.logins
        if let first = loads.first { record(load: loads.dropFirst().reduce(first) { $0.adding($1) }) }
        if let first = baselines.first { record(baseline: baselines.dropFirst().reduce(first) { $0.adding($1) }) }
    }

    private mutating func record(load: PhaseResults) {
        locationLatencyMs = LatencySummary(load.location)
        alertLatencyMs = LatencySummary(load.alert)
        acceptLatencyMs = LatencySummary(load.accept)
        inProgressLatencyMs = LatencySummary(load.progress)
        completedLatencyMs = LatencySummary(load.complete)
        cancelLatencyMs = LatencySummary(load.cancel)
        noDriverFoundLatencyMs = LatencySummary(load.noDriver)
        func window(_ counter: Measurements.Counter) -> Int { load.window[counter.rawValue] }
        func total(_ counter: Measurements.Counter) -> Int { load.total[counter.rawValue] }
        var withdrawals: [String: Int] = [:]
        let reasons: [(String, Measurements.Counter)] = [
            ("expired", .withdrawnExpired), ("declined", .withdrawnDeclined), ("unavailable", .withdrawnUnavailable), ("other", .withdrawnOther),
        ]
        for (reason, counter) in reasons where window(counter) > 0 || reason != "other" {
            withdrawals[reason] = window(counter)
        }
        let requests = Double(max(1, window(.tripRequests)))
        let decided = window(.requestsDecided)
        let meanWait = decided > 0 ? Double(window(.requestWaitMicroseconds)) / 1e6 / Double(decided) : 0
        let toDrivers = window(.offersReceived) + withdrawals.values.reduce(0, +) + window(.offersDecided)
        dispatch = Dispatch(
            requestsSent: window(.tripRequests), unservedRequests: window(.unservedRequests), offersReceived: window(.offersReceived),
            offersLaterRound: window(.offersLaterRound), offersDeclined: window(.offersDeclined), offersLetExpire: window(.offersIgnored),
            withdrawals: withdrawals, decidedToHolders: window(.offersDecided), searchingRounds: window(.searchingRounds),
            noDriverFound: window(.noDriverFound), noDriverFoundServed: window(.noDriverFoundServed), unservedGivenUp: window(.unservedGivenUp),
            offersPerRequest: Double(window(.offersReceived)) / requests, messagesToDriversPerRequest: Double(toDrivers) / requests,
            meanWaitS: meanWait,
            tripTicksPerRequest: decided > 0 ? 1 + 2 * meanWait + Double(window(.withdrawnDeclined)) / Double(decided) : 0,
            hubCpuMsPerRequest: load.hubCPUSeconds * 1e3 / requests
        )
        requestOutcomes = RequestOutcomes(
            sent: total(.tripRequests), accepted: total(.requestsAccepted), noDriverFound: total(.noDriverFound),
            noDriverFoundServed: total(.noDriverFoundServed), canceled: total(.requestsCanceled), failed: total(.requestsFailed),
            waitingAtEnd: load.waitingAtEnd, oldestWaitingS: load.oldestWaitingSeconds
        )
        tripChanges = TripChanges(
            requestsSent: window(.tripRequests), requestsSkipped: window(.tripRequestsSkipped), creates: window(.tripCreates),
            accepts: window(.tripAccepts), inProgress: window(.tripProgress), completed: window(.tripsCompleted), canceled: window(.tripCancels),
            total: load.tripChanges, perS: Double(load.tripChanges) / load.seconds
        )
        hubCommits = load.hubCommits.map { commits in
            HubCommits(
                commits: Int(commits.commits.rounded()), changes: Int(commits.changes.rounded()), commitsPerS: commits.commits / load.seconds,
                changesPerCommit: commits.commits > 0 ? commits.changes / commits.commits : 0,
                meanCommitMs: commits.commits > 0 ? commits.microseconds / commits.commits / 1_000 : 0,
                busyShare: commits.microseconds / 1e6 / load.seconds
            )
        }
        locationUpdatesPerS = load.locationUpdatesPerSecond
        locationUpdatesOfferedPerS = Double(settings.drivers) * settings.gpsHz
        messagesInPerS = load.perSecond(.framesIn)
        messagesOutPerS = load.perSecond(.framesOut)
        errors = load.errors
        connectionFailures = load.total[Measurements.Counter.connectionFailures.rawValue]
            + load.total[Measurements.Counter.unexpectedCloses.rawValue]
        connectionFailureReasons = load.connectionFailureReasons
        let unexpected = load.total[Measurements.Counter.unexpectedCloses.rawValue]
        if unexpected > 0 { connectionFailureReasons["closed_by_hub"] = unexpected }
        races = Races(
            trips: load.races.trips, winners: load.races.winners, tripsWithSeveralWinners: load.races.severalWinners,
            tripsWithoutWinner: load.races.noWinner
        )
        tripsCompleted = load.total[Measurements.Counter.tripsCompleted.rawValue]
        tripsUnaccepted = load.total[Measurements.Counter.unacceptedTrips.rawValue]
        alertsIgnored = load.total[Measurements.Counter.ignoredAlerts.rawValue]
        reconnects = load.total[Measurements.Counter.reconnects.rawValue]
        drops = load.total[Measurements.Counter.drops.rawValue]
        if load.hubRestarted || load.connectionFailureReasons["connect", default: 0] > 0 {
            warnings.append("The hub was unreachable or restarted during the run: its CPU figures may cover only part of the window.")
        }
        hubCpuSeconds = load.hubCPUSeconds
        hubCpuUsPerMessage = load.hubMicrosecondsPerMessage
        hubCpuUsPerFrame = load.hubMicrosecondsPerFrame
        hubRssBytes = load.hubResidentBytes
        generatorCpuSeconds = load.generatorCPUSeconds
        nodes = settings.urls.indices.map { index in
            let tally = load.nodeTallies.indices.contains(index) ? load.nodeTallies[index] : Measurements.NodeTally()
            return Node(
                url: settings.urls[index], clientsStarted: tally.clientsStarted, reconnectsMovedAway: tally.movedAway,
                reconnectsMovedIn: tally.movedIn, hubCpuSeconds: load.nodeCPUSeconds.indices.contains(index) ? load.nodeCPUSeconds[index] : nil,
                hubRssBytes: load.nodeResidentBytes.indices.contains(index) ? load.nodeResidentBytes[index] : nil
            )
        }
        warnings += load.warnings
        if settings.urls.count > 1, !load.nodesWithoutReading.isEmpty {
            let silent = load.nodesWithoutReading.sorted().map { settings.urls[$0] }.joined(separator: ", ")
            warnings.append("No /metrics reading at both ends of the window from \(silent): the hub CPU figures leave it out.")
        }
        if let limited = errors["rate_limited"] { warnings.append(PhaseTicker.rateLimitWarning(limited)) }
        if load.location.totalCount == 0 { warnings.append("No location latency was measured: no trip was driven in the window.") }
    }

    private mutating func record(baseline results: PhaseResults) {
        baseline = Baseline(
            locationLatencyMs: LatencySummary(results.location), messagesInPerS: results.perSecond(.framesIn), messagesOutPerS: results.perSecond(.framesOut),
            hubCpuSeconds: results.hubCPUSeconds, hubCpuUsPerMessage: results.hubMicrosecondsPerMessage,
            hubCpuUsPerFrame: results.hubMicrosecondsPerFrame,
            connectionFailures: results.total[Measurements.Counter.connectionFailures.rawValue]
        )
        if hubCpuSeconds > 0, results.hubCPUSeconds > 0 {
            cpuPerMessageRatio = hubCpuUsPerMessage / results.hubMicrosecondsPerMessage
            cpuPerFrameRatio = hubCpuUsPerFrame / results.hubMicrosecondsPerFrame
        }
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// The results as Markdown tables.
    public var markdown: String {
        var lines = ["Machine: \(machine.summary)"]
        if settings.drivers > 0 {
            lines += [
                "",
                "Load: \(Format.count(settings.drivers)) drivers at \(settings.gpsHz) Hz, \(Format.count(settings.riders)) riders, "
                    + (hubCount > 1 ? "spread over \(hubCount) hubs, " : "")
                    + (settings.tripRate > 0
                        ? "\(settings.tripRate.formatted()) trip requests/s, "
                        : "each rider again \(settings.riderPauseS.formatted()) s after its trip, ")
                    + "\(settings.tripBlocks) blocks a trip at \(settings.tripSpeed > 0 ? "\(settings.tripSpeed.formatted()) m/s" : "the driver's own speed"), "
                    + "\(settings.durationS.formatted()) s measured after \(settings.warmupS.formatted()) s of warm-up"
                    + (rounds.count > 1 ? ", \(rounds.count) rounds (the tables sum them)" : ""), "",
                "| latency (ms) | count | p50 | p99 | p99.9 | max |", "|---|---:|---:|---:|---:|---:|",
                Self.row("location → rider", locationLatencyMs), Self.row("create.trip → driver alert", alertLatencyMs),
                Self.row("accept → rider STARTED", acceptLatencyMs),
                Self.row("IN_PROGRESS → rider", inProgressLatencyMs), Self.row("COMPLETED → rider", completedLatencyMs),
                Self.row("cancel.trip → rider CANCELED", cancelLatencyMs),
                Self.row("create.trip → no_driver_found", noDriverFoundLatencyMs),
            ]
            if let baseline { lines.append(Self.row("echo round trip (baseline)", baseline.locationLatencyMs)) }
            lines += [
                "", "| measure | value |", "|---|---:|",
                "| location updates/s (achieved / offered) | \(Format.count(Int(locationUpdatesPerS.rounded()))) / \(Format.count(Int(locationUpdatesOfferedPerS.rounded()))) |",
                "| frames/s to the hub / from the hub | \(Format.count(Int(messagesOutPerS.rounded()))) / \(Format.count(Int(messagesInPerS.rounded()))) |",
                "| hub CPU in the window | \(String(format: "%.2f", hubCpuSeconds)) s (\(String(format: "%.0f", 100 * hubCpuSeconds / (settings.durationS * Double(max(1, rounds.count))))) % of one core) |",
                "| hub CPU per client message / per frame | \(String(format: "%.1f", hubCpuUsPerMessage)) µs / \(String(format: "%.1f", hubCpuUsPerFrame)) µs |",
                "| generator CPU in the window | \(String(format: "%.2f", generatorCpuSeconds)) s |",
                "| hub resident memory\(hubCount > 1 ? " (summed over the hubs)" : "") | \(Format.count(hubRssBytes / 1024)) KiB |",
                "| races: trips / winners (several / none) | \(races.trips) / \(races.winners) (\(races.tripsWithSeveralWinners) / \(races.tripsWithoutWinner)) |",
                "| trips completed / unaccepted; alerts let pass (driver busy) | \(tripsCompleted) / \(tripsUnaccepted); \(alertsIgnored) |",
                "| trip changes in the window: creates / accepts / IN_PROGRESS / COMPLETED / CANCELED | \(tripChanges.creates) / "
                    + "\(tripChanges.accepts) / \(tripChanges.inProgress) / \(tripChanges.completed) / \(tripChanges.canceled) |",
                "| trip changes per second in the window; requests sent\(settings.tripRate > 0 ? " / skipped (no rider free)" : "") | "
                    + "\(String(format: "%.1f", tripChanges.perS)); \(tripChanges.requestsSent)"
                    + "\(settings.tripRate > 0 ? " / \(tripChanges.requestsSkipped)" : "") |",
                "| hub commits per second; changes per commit; mean commit time; share of the window committing | "
                    + (hubCommits.map {
                        String(format: "%.1f; %.2f; %.2f ms; %.1f %%", $0.commitsPerS, $0.changesPerCommit, $0.meanCommitMs, 100 * $0.busyShare)
                    } ?? "n/a (no commit counters on the hub)") + " |",
                "| offers received per request (in later rounds); declined / let expire | "
                    + String(format: "%.2f", dispatch.offersPerRequest) + " (\(dispatch.offersLaterRound)); \(dispatch.offersDeclined) / \(dispatch.offersLetExpire) |",
                "| offers withdrawn: " + dispatch.withdrawals.keys.sorted().joined(separator: " / ") + "; decided states to holders | "
                    + dispatch.withdrawals.sorted { $0.key < $1.key }.map { "\($0.value)" }.joined(separator: " / ") + "; \(dispatch.decidedToHolders) |",
                "| messages to drivers per request (offers, withdrawals, decided states) | " + String(format: "%.2f", dispatch.messagesToDriversPerRequest) + " |",
                "| rounds searched further (`trip.searching`); requests placed where no driver is | \(dispatch.searchingRounds); \(dispatch.unservedRequests) |",
                "| ended no_driver_found: placed where no driver is / others; given up by the rider | "
                    + "\(dispatch.noDriverFound) / \(dispatch.noDriverFoundServed); \(dispatch.unservedGivenUp) |",
                "| mean wait in REQUESTED; dispatch ticks per request (estimated); hub CPU per request | "
                    + String(format: "%.3f s; %.2f; %.2f ms", dispatch.meanWaitS, dispatch.tripTicksPerRequest, dispatch.hubCpuMsPerRequest) + " |",
                "| requests (whole run): sent = accepted + no driver + canceled + failed + waiting at the end (oldest) | "
                    + "\(requestOutcomes.sent) = \(requestOutcomes.accepted) + \(requestOutcomes.noDriverFound + requestOutcomes.noDriverFoundServed) + "
                    + "\(requestOutcomes.canceled) + \(requestOutcomes.failed) + \(requestOutcomes.waitingAtEnd) (" + String(format: "%.1f s", requestOutcomes.oldestWaitingS) + ") |",
                "| reconnections / sockets dropped on purpose | \(reconnects) / \(drops) |",
                "| connection failures | \(connectionFailures)\(connectionFailureReasons.isEmpty ? "" : " \(connectionFailureReasons)") |",
                "| errors | \(errors.isEmpty ? "none" : errors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) |",
            ]
            if let acknowledged {
                lines.append(
                    "| acknowledged: trip events / locations | \(acknowledged.events) / \(acknowledged.locations) ("
                        + acknowledged.byStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ") |"
                )
            }
        }
        if hubCount > 1, !nodes.isEmpty {
            lines += [
                "", "| hub (\(hubCount) URLs) | clients started | reconnects moved away / in | hub CPU in the window | hub resident memory |",
                "|---|---:|---:|---:|---:|",
            ]
            for node in nodes {
                lines.append(
                    "| \(node.url) | \(Format.count(node.clientsStarted)) | \(node.reconnectsMovedAway) / \(node.reconnectsMovedIn) | "
                        + "\(node.hubCpuSeconds.map { String(format: "%.2f s", $0) } ?? "no answer") | "
                        + "\(node.hubRssBytes.map { Format.count($0 / 1024) + " KiB" } ?? "no answer") |"
                )
            }
        }
        if let baseline {
            lines += [
                "", "| echo baseline (same frames, same rate) | value |", "|---|---:|",
                "| frames/s to the hub / from the hub | \(Format.count(Int(baseline.messagesOutPerS.rounded()))) / \(Format.count(Int(baseline.messagesInPerS.rounded()))) |",
                "| hub CPU in the window | \(String(format: "%.2f", baseline.hubCpuSeconds)) s |",
                "| hub CPU per client message / per frame | \(String(format: "%.1f", baseline.hubCpuUsPerMessage)) µs / \(String(format: "%.1f", baseline.hubCpuUsPerFrame)) µs |",
                "| hub ÷ echo CPU per client message / per frame | \(cpuPerMessageRatio.map(Format.ratio) ?? "–") / \(cpuPerFrameRatio.map(Format.ratio) ?? "–") |",
            ]
        }
        if rounds.count > 1 {
            lines += [
                "",
                "| round | hub CPU per message | location p99 | alert p99 | accept p99 | trip changes/s | commits/s; changes per commit | generator CPU | echo CPU per message | echo p99 | hub ÷ echo |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for (index, round) in rounds.enumerated() {
                lines.append(
                    "| \(index + 1) | \(String(format: "%.1f", round.hubCpuUsPerMessage)) µs | \(Format.milliseconds(round.locationP99Ms)) ms | "
                        + "\(Format.milliseconds(round.alertP99Ms)) ms | \(Format.milliseconds(round.acceptP99Ms)) ms | \(String(format: "%.1f", round.tripChangesPerS)) | "
                        + "\(round.commitsPerS.map { String(format: "%.1f", $0) } ?? "n/a")\(round.changesPerCommit.map { String(format: "; %.2f", $0) } ?? "") | "
                        + "\(String(format: "%.1f", round.generatorCpuSeconds)) s | \(round.echoCpuUsPerMessage.map { String(format: "%.1f µs", $0) } ?? "–") | "
                        + "\(round.echoP99Ms.map { Format.milliseconds($0) + " ms" } ?? "–") | \(round.cpuPerMessageRatio.map(Format.ratio) ?? "–") |"
                )
            }
        }
        if let logins {
            lines += [
                "", "Log-ins: \(logins.ratePerS.formatted())/s, switched on and off every \(logins.periodS.formatted()) s of the window", "",
                "| latency (ms) | count | p50 | p99 | p99.9 | max |", "|---|---:|---:|---:|---:|---:|",
                Self.row("location → rider, log-ins off", logins.locationLatencyWithoutLoginsMs),
                Self.row("location → rider, log-ins on", logins.locationLatencyWithLoginsMs),
                Self.row("log-in answered 200", logins.loginLatencyMs),
                "", "| log-ins | \(logins.attempted) sent: " + logins.answers.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + " |",
            ]
        }
        if let idle {
            lines += [
                "", "| idle connections | value |", "|---|---:|",
                "| open | \(Format.count(idle.connections))\(idle.failures.isEmpty ? "" : " (failed: \(idle.failures))") |",
                "| hub resident memory before / after | \(Format.count(idle.hubRssBytesBefore / 1024)) KiB / \(Format.count(idle.hubRssBytes / 1024)) KiB |",
                "| hub memory per connection | \(Format.count(Int(idle.bytesPerConnection.rounded()))) bytes |",
                "| one more connection | \(idle.extraConnection) |",
                "| /healthz afterwards | \(idle.healthzAfter.map(String.init) ?? "no answer") |",
            ]
        }
        if !warnings.isEmpty { lines += [""] + warnings }
        return lines.joined(separator: "\n")
    }

    private static func row(_ name: String, _ summary: LatencySummary) -> String {
        "| \(name) | \(Format.count(summary.count)) | "
            + [summary.p50, summary.p99, summary.p999, summary.max].map(Format.milliseconds).joined(separator: " | ") + " |"
    }
}
