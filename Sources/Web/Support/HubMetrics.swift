import BenchSupport
import Hub
import Persistence
import Prometheus

/// The hub's Prometheus metrics: connections, messages in and out by type, errors by code,
/// trips by status, the snapshot loop's health, and the process's CPU time and resident
/// memory. Label values come from fixed lists, never from what a client sends, so a client
/// cannot blow up the series count.
final class HubMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let connectionsOpen: Gauge
    private let slowClientsDropped: Counter
    private let loginsThrottled: [String: Counter]
    private let connectionTimeouts: [RequestTimeoutHandler.Phase: Counter]
    private let httpRefusals: [String: Counter]
    private let socketCloses: [String: Counter]
    private let messagesIn: [String: Counter]
    private let messagesOut: [String: Counter]
    private let errors: [String: Counter]
    private let tripsByStatus: [TripStatus: Gauge]
    private let snapshotLag: Gauge
    private let snapshotPending: Gauge
    private let snapshotFailures: Gauge
    private let snapshotLastWrite: Gauge
    private let usersTotal: Gauge
    private let driversOnline: Gauge
    private let outboundQueued: Gauge
    private let outboundLongest: Gauge
    private let commits: Counter
    private let committedChanges: Counter
    private let commitMicroseconds: Counter

    static let inboundTypes = ClientMessage.knownTypes + ["other"]
    static let outboundTypes = [
        "echo.message", "trip.location", "error", "operator.drivers", "operator.stats", "operator.demand", "trip.offer_withdrawn",
        "trip.searching", "trip.driver_arriving", "trip.driver_arrived", "driver.availability",
    ]
    /// HTTP statuses counted one by one; any other status of 400 and above counts as "other".
    static let refusalStatuses = [400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 500, 503].map(String.init) + ["other"]
    /// Why the hub closed a socket it refused to keep (slow readers count in their own counter).
    enum SocketCloseReason: String, CaseIterable {
        /// 1002: a frame broke the WebSocket protocol (e.g. a continuation without a message).
        case protocolError = "protocol_error"
        /// 1009: a message over the size limit.
        case tooLarge = "too_large"
        /// No pong within a ping interval.
        case noPong = "no_pong"
        /// 1013: two handshakes raced for the last free connection and this one lost.
        case atCapacity = "at_capacity"
    }
    static let errorCodes = [
        "bad_message", "unknown_type", "invalid", "forbidden", "not_found", "trip_taken", "invalid_transition",
        "rate_limited", "too_large", "unavailable", "no_offer", "too_far_from_pickup",
    ]

    init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        connectionsOpen = registry.makeGauge(descriptor: .init(metricName: "taxihub_connections_open", unitName: "", helpText: "Open WebSocket connections."))
        slowClientsDropped = registry.makeCounter(descriptor: .init(metricName: "taxihub_slow_clients_dropped_total", unitName: "", helpText: "Sockets closed with 1008 because the client read too slowly (outbound queue overflow)."))
        loginsThrottled = Dictionary(uniqueKeysWithValues: LoginThrottle.Refusal.Scope.allCases.map(\.rawValue).map { scope in
            (scope, registry.makeCounter(descriptor: .init(metricName: "taxihub_logins_throttled_total", unitName: "", helpText: "Log-in attempts refused with 429, by what was over its rate."), labels: [("scope", scope)]))
        })
        httpRefusals = Dictionary(uniqueKeysWithValues: Self.refusalStatuses.map { status in
            (status, registry.makeCounter(descriptor: .init(metricName: "taxihub_http_refusals_total", unitName: "", helpText: "HTTP answers of 400 and above (routes, files, refused upgrades), by status."), labels: [("status", status)]))
        })
        socketCloses = Dictionary(uniqueKeysWithValues: SocketCloseReason.allCases.map(\.rawValue).map { reason in
            (reason, registry.makeCounter(descriptor: .init(metricName: "taxihub_socket_closes_total", unitName: "", helpText: "Sockets the hub closed for breaking its rules, by reason."), labels: [("reason", reason)]))
        })
        connectionTimeouts = Dictionary(uniqueKeysWithValues: RequestTimeoutHandler.Phase.allCases.map { phase in
            (phase, registry.makeCounter(descriptor: .init(metricName: "taxihub_connection_timeouts_total", unitName: "", helpText: "HTTP connections closed because the client was too slow: a request head or body (answered 408), or an idle connection."), labels: [("phase", phase.rawValue)]))
        })
        messagesIn = Dictionary(uniqueKeysWithValues: Self.inboundTypes.map { type in
            (type, registry.makeCounter(descriptor: .init(metricName: "taxihub_messages_in_total", unitName: "", helpText: "Client messages received."), labels: [("type", type)]))
        })
        messagesOut = Dictionary(uniqueKeysWithValues: Self.outboundTypes.map { type in
            (type, registry.makeCounter(descriptor: .init(metricName: "taxihub_messages_out_total", unitName: "", helpText: "Messages sent to clients."), labels: [("type", type)]))
        })
        errors = Dictionary(uniqueKeysWithValues: Self.errorCodes.map { code in
            (code, registry.makeCounter(descriptor: .init(metricName: "taxihub_errors_total", unitName: "", helpText: "Error replies sent, by code."), labels: [("code", code)]))
        })
        tripsByStatus = Dictionary(uniqueKeysWithValues: TripStatus.allCases.map { status in
            (status, registry.makeGauge(descriptor: .init(metricName: "taxihub_trips", unitName: "", helpText: "Live trips by status."), labels: [("status", status.rawValue)]))
        })
        snapshotLag = registry.makeGauge(descriptor: .init(metricName: "taxihub_snapshot_lag_seconds", unitName: "", helpText: "Seconds since the last successful snapshot."))
        snapshotPending = registry.makeGauge(descriptor: .init(metricName: "taxihub_snapshot_pending", unitName: "", helpText: "Changed entities waiting for the next snapshot."))
        snapshotFailures = registry.makeGauge(descriptor: .init(metricName: "taxihub_snapshot_consecutive_failures", unitName: "", helpText: "Snapshot writes failed in a row."))
        snapshotLastWrite = registry.makeGauge(descriptor: .init(metricName: "taxihub_snapshot_last_write_entities", unitName: "", helpText: "Entities in the last snapshot."))
        usersTotal = registry.makeGauge(descriptor: .init(metricName: "taxihub_users", unitName: "", helpText: "User accounts."))
        driversOnline = registry.makeGauge(descriptor: .init(metricName: "taxihub_drivers_online", unitName: "", helpText: "Connected drivers."))
        outboundQueued = registry.makeGauge(descriptor: .init(metricName: "taxihub_outbound_queued", unitName: "", helpText: "Messages waiting in all outbound queues."))
        outboundLongest = registry.makeGauge(descriptor: .init(metricName: "taxihub_outbound_queue_longest", unitName: "", helpText: "Messages waiting in the longest outbound queue."))
        commits = registry.makeCounter(descriptor: .init(metricName: "taxihub_commits_total", unitName: "", helpText: "Group commits of trip changes and sign-ups (journal appends, or fenced PostgreSQL transactions in a cluster)."))
        committedChanges = registry.makeCounter(descriptor: .init(metricName: "taxihub_committed_changes_total", unitName: "", helpText: "Trip changes and sign-ups made durable by those commits."))
        commitMicroseconds = registry.makeCounter(descriptor: .init(metricName: "taxihub_commit_microseconds_total", unitName: "", helpText: "Time spent in those commits, in microseconds."))
    }

    /// Counts one group commit.
    func committed(_ commit: GroupCommitLog.CommitRecord) {
        commits.increment()
        committedChanges.increment(by: Int64(commit.changes))
        let (seconds, attoseconds) = commit.duration.components
        commitMicroseconds.increment(by: seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
    }

    func connectionOpened() { connectionsOpen.increment(by: 1) }
    func connectionClosed() { connectionsOpen.decrement(by: 1) }
    func slowClientDropped() { slowClientsDropped.increment() }
    func loginThrottled(scope: String) { loginsThrottled[scope]?.increment() }
    func connectionTimedOut(phase: RequestTimeoutHandler.Phase) { connectionTimeouts[phase]?.increment() }
    func httpRefused(status: Int) { (httpRefusals[String(status)] ?? httpRefusals["other"])?.increment() }
    func socketClosed(_ reason: SocketCloseReason) { socketCloses[reason.rawValue]?.increment() }

    func received(type: String?) {
        (messagesIn[type ?? "other"] ?? messagesIn["other"])?.increment()
    }

    func sent(type: String) {
        messagesOut[type]?.increment()
    }

    func error(code: String) {
        errors[code]?.increment()
        sent(type: "error")
    }

    /// Client messages received and messages sent since the start, all types together (for the
    /// operators' rates). Read from the counters' own export, the one place their values live.
    func messageTotals() -> (in: Double, out: Double) {
        var totals = (in: 0.0, out: 0.0)
        for line in registry.emitToString().split(separator: "\n") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            if line.hasPrefix("taxihub_messages_in_total{") {
                totals.in += value
            } else if line.hasPrefix("taxihub_messages_out_total{") {
                totals.out += value
            }
        }
        return totals
    }

    /// Refreshes the gauges read from live state and renders the text format.
    func render(hub: Hub, snapshot: SnapshotStatus, connections: ConnectionRegistry) -> String {
        let counts = hub.index.countsByStatus()
        for (status, gauge) in tripsByStatus { gauge.set(Double(counts[status] ?? 0)) }
        let current = snapshot.current
        snapshotLag.set(snapshot.lagSeconds(now: .now()))
        snapshotPending.set(Double(hub.changes.pendingCount))
        snapshotFailures.set(Double(current.consecutiveFailures))
        snapshotLastWrite.set(Double(current.lastWriteCount))
        usersTotal.set(Double(hub.users.count))
        driversOnline.set(Double(hub.drivers.count))
        let queued = connections.queuedOutbound
        outboundQueued.set(Double(queued.total))
        outboundLongest.set(Double(queued.longest))
        return registry.emitToString() + Self.processText()
    }

    /// The process's CPU time and resident memory, in Prometheus text format.
    private static func processText() -> String {
        """
        # HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
        # TYPE process_cpu_seconds_total counter
        process_cpu_seconds_total \(ProcessStats.cpuSeconds())
        # HELP process_resident_memory_bytes Resident memory size in bytes.
        # TYPE process_resident_memory_bytes gauge
        process_resident_memory_bytes \(ProcessStats.residentBytes())

        """
    }
}
