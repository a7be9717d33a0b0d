import Foundation
import Hub
import Persistence
import ServiceLifecycle
import Synchronization

/// Sends the operators' sockets the hub's live picture without being asked: every connected
/// driver's position and state a few times a second (`operator.drivers`, one frame for all of
/// them, not one per fix), and once a second counts, health and recent trips (`operator.stats`)
/// and supply and demand per cell (`operator.demand`). Each frame is
/// built once and queued to every operator socket; with no operator connected, nothing is built.
final class OperatorFeed: Service, Sendable {
    /// Trips that finished since the hub started, as the snapshot loop let them go.
    private struct FinishedTrips {
        var completed = 0
        var canceled = 0
        /// Newest last.
        var recent: [Trip] = []
    }

    static let recentFinishedLimit = 20
    static let liveTripLimit = 100

    private let hub: Hub
    private let connections: ConnectionRegistry
    private let metrics: HubMetrics
    private let startup: HubStartup
    private let snapshot: SnapshotStatus
    private let storeKind: String
    private let interval: Duration
    private let watchers = Mutex<[ConnectionID: ClientConnection]>([:])
    private let finished = Mutex(FinishedTrips())

    init(
        hub: Hub, connections: ConnectionRegistry, metrics: HubMetrics, startup: HubStartup, snapshot: SnapshotStatus,
        storeKind: String, interval: Duration
    ) {
        self.hub = hub
        self.connections = connections
        self.metrics = metrics
        self.startup = startup
        self.snapshot = snapshot
        self.storeKind = storeKind
        self.interval = interval
    }

    /// An operator's socket starts getting the feed.
    func watch(_ connection: ClientConnection) {
        watchers.withLock { $0[connection.connectionID] = connection }
    }

    func stopWatching(_ connection: ConnectionID) {
        watchers.withLock { $0[connection] = nil }
    }

    /// Counts trips that reached the store finished (and so leave memory), and keeps the newest.
    func recordFinished(_ trips: some Sequence<Trip>) {
        finished.withLock { finished in
            for trip in trips.sorted(by: { $0.updated < $1.updated }) {
                switch trip.status {
                case .completed: finished.completed += 1
                case .canceled: finished.canceled += 1
                default: continue
                }
                finished.recent.append(trip)
            }
            finished.recent.removeFirst(max(0, finished.recent.count - Self.recentFinishedLimit))
        }
    }

    func run() async throws {
        var rates = MessageRates(totals: metrics.messageTotals(), at: .now)
        var sinceStats = Duration.seconds(1)
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            guard (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: self.interval) })) != nil else { return }
            sinceStats += interval
            let sendStats = sinceStats >= .seconds(1)
            if sendStats { sinceStats = .zero }
            let targets = watchers.withLock { Array($0.values) }
            guard !targets.isEmpty else { continue }
            send(driversFrame(), type: "operator.drivers", to: targets)
            if sendStats {
                let perSecond = rates.advance(to: metrics.messageTotals(), at: .now)
                send(statsFrame(rates: perSecond), type: "operator.stats", to: targets)
                send(demandFrame(), type: "operator.demand", to: targets)
            }
        }
    }

    private func send(_ frame: String, type: String, to targets: [ClientConnection]) {
        for connection in targets {
            connection.enqueue(.text(frame))
            metrics.sent(type: type)
        }
    }

    /// `{"data":{"drivers":[[id,lat,lng,busy],…],"offline":[id,…],"stale":[id,…]},"type":"operator.drivers"}`,
    /// written by hand: thousands of drivers, several times a second. Coordinates are rounded to 5
    /// decimals (about a metre, plenty for a map), which prints them in half the digits. Drivers
    /// online with a fresh position, nearly all, are in neither list (`DriverState`).
    func driversFrame() -> String {
        let sightings = hub.drivers.positions(at: hub.clock.now())
        var text = #"{"data":{"drivers":["#
        text.reserveCapacity(60 + sightings.count * 30)
        var offline: [Int] = []
        var stale: [Int] = []
        for (index, sighting) in sightings.enumerated() {
            if index > 0 { text += "," }
            let lat = (sighting.point.lat * 100_000).rounded() / 100_000
            let lng = (sighting.point.lng * 100_000).rounded() / 100_000
            text += "[\(sighting.driverID),\(lat),\(lng),\(sighting.isBusy ? 1 : 0)]"
            switch sighting.state {
            case .online: break
            case .offline: offline.append(sighting.driverID)
            case .stale: stale.append(sighting.driverID)
            }
        }
        text += #"],"offline":["# + offline.map(String.init).joined(separator: ",")
        text += #"],"stale":["# + stale.map(String.init).joined(separator: ",")
        text += #"]},"type":"operator.drivers"}"#
        return text
    }

    func statsFrame(rates: (in: Double, out: Double)) -> String {
        let live = hub.index.allTrips().sorted { $0.created > $1.created }.prefix(Self.liveTripLimit)
        let counts = hub.index.countsByStatus()
        let done = finished.withLock { $0 }
        var trips = Dictionary(uniqueKeysWithValues: TripStatus.allCases.map { ($0.rawValue, counts[$0] ?? 0) })
        trips[TripStatus.completed.rawValue] = done.completed + (counts[.completed] ?? 0)
        trips[TripStatus.canceled.rawValue] = done.canceled + (counts[.canceled] ?? 0)
        let liveIDs = Set(live.map(\.id))
        let recent = Array(live) + done.recent.reversed().filter { !liveIDs.contains($0.id) }
        let current = snapshot.current
        let storeState: String =
            if !startup.isReady { "loading" } else if current.consecutiveFailures > 0 { "failing" } else { "ready" }
        let driverCounts = hub.drivers.counts(at: hub.clock.now())
        let stats = OperatorStatsJSON(
            connections: connections.count, driversOnline: hub.drivers.count,
            drivers: .init(connected: driverCounts.connected, busy: driverCounts.busy, offline: driverCounts.offline, stale: driverCounts.stale),
            users: hub.users.count,
            messagesInPerSecond: rates.in, messagesOutPerSecond: rates.out,
            store: .init(
                kind: storeKind, state: storeState, lagSeconds: (snapshot.lagSeconds(now: .now()) * 1000).rounded() / 1000,
                pending: hub.changes.pendingCount, lastError: current.consecutiveFailures > 0 ? current.lastError : nil
            ),
            trips: trips, recentTrips: recent.map { TripJSON(view: hub.users.view(of: $0)) }
        )
        return WireEncoding.encode(Frame(type: "operator.stats", data: stats))
    }

    /// `{"data": <supply and demand per cell, as GET /api/demand/>, "type": "operator.demand"}`.
    func demandFrame() -> String {
        WireEncoding.encode(Frame(type: "operator.demand", data: DemandJSON(hub.supplyAndDemand(), grid: hub.drivers.grid, at: hub.clock.now())))
    }

    private struct Frame<Payload: Encodable>: Encodable {
        let type: String
        let data: Payload
    }
}

/// Messages per second in and out, from the totals read a moment apart.
struct MessageRates {
    private var totals: (in: Double, out: Double)
    private var at: ContinuousClock.Instant

    init(totals: (in: Double, out: Double), at: ContinuousClock.Instant) {
        self.totals = totals
        self.at = at
    }

    mutating func advance(to newTotals: (in: Double, out: Double), at now: ContinuousClock.Instant) -> (in: Double, out: Double) {
        let seconds = max((now - at).seconds, 0.001)
        let rates = ((newTotals.in - totals.in) / seconds, (newTotals.out - totals.out) / seconds)
        totals = newTotals
        at = now
        return ((rates.0 * 10).rounded() / 10, (rates.1 * 10).rounded() / 10)
    }
}

/// The `data` of an `operator.stats` frame (docs/protocol.md §5.1).
struct OperatorStatsJSON: Encodable {
    struct Store: Encodable {
        let kind: String
        let state: String
        let lagSeconds: Double
        let pending: Int
        let lastError: String?

        enum CodingKeys: String, CodingKey {
            case kind, state, pending
            case lagSeconds = "lag_seconds"
            case lastError = "last_error"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(kind, forKey: .kind)
            try container.encode(state, forKey: .state)
            try container.encode(lagSeconds, forKey: .lagSeconds)
            try container.encode(pending, forKey: .pending)
            try container.encode(lastError, forKey: .lastError)
        }
    }

    /// Connected drivers (each once) by availability.
    struct Drivers: Encodable {
        let connected: Int
        let busy: Int
        let offline: Int
        let stale: Int
    }

    let connections: Int
    let driversOnline: Int
    let drivers: Drivers
    let users: Int
    let messagesInPerSecond: Double
    let messagesOutPerSecond: Double
    let store: Store
    let trips: [String: Int]
    let recentTrips: [TripJSON]

    enum CodingKeys: String, CodingKey {
        case connections, users, store, trips, drivers
        case driversOnline = "drivers_online"
        case messagesInPerSecond = "messages_in_per_second"
        case messagesOutPerSecond = "messages_out_per_second"
        case recentTrips = "recent_trips"
    }
}
