import BenchSupport
import NIOCore
import SocketClient

/// What holding N idle WebSockets costs the hub, and how it refuses one more past its cap.
public struct IdleResults: Codable, Sendable {
    public let connections: Int
    /// Attempts that failed, by reason (`http_503`, `connect`, …).
    public let failures: [String: Int]
    /// The hub's resident memory with the connections open, and before they were opened.
    public let hubRssBytes: Int
    public let hubRssBytesBefore: Int
    public let bytesPerConnection: Double
    /// What happened to one more connection after the N: `refused with HTTP 503`, `accepted`, ….
    public let extraConnection: String
    /// The extra connection got HTTP 503 and the hub still answered `/healthz` with 200 afterwards.
    public let extraRefusedCleanly: Bool
    public let healthzAfter: Int?
}

/// Opens N WebSockets to `/taxi/` (one rider each: a user may hold only a few), spread over the
/// source addresses and the hubs (`i % n`), holds them (the client answers pings), and reads the
/// hubs' resident memory before and after (summed over the nodes that answered both times);
/// then tries one connection more (on the node the next one would go to) and checks its `/healthz`.
struct IdlePhase {
    let settings: LoadTestSettings
    let connector: Connector
    let log: @Sendable (String) -> Void

    func run() async throws -> IdleResults {
        // One more user than sockets, for the extra connection at the end.
        let hubs = connector.hubs
        let users = try await hubs.benchUsers([HubNodes.Batch(prefix: "\(settings.userPrefix)-idle", count: settings.idle + 1, group: "rider")])
        let fallback = users.users.map(\.access)
        let paths = (0...settings.idle).map { index in "/taxi/?token=" + (users.tokens[hubs.node(for: index)] ?? fallback)[index] }
        try await Task.sleep(for: .seconds(1))
        let before = try await hubs.processReadings()
        let measurements = Measurements(nodes: hubs.count)
        log("idle: opening \(settings.idle) WebSockets over \(max(1, connector.sources.addresses.count)) source address(es)")
        let opening = MonotonicClock.nanoseconds()
        let progress = Task { await PhaseTicker(phase: "idle", measurements: measurements, log: log).run(from: opening) }
        let events = WebSocketClient.Events(
            text: { _ in measurements.add(.framesIn) }, closed: { measurements.add(.connectionsOpen, -1) }
        )
        let clients = await connector.open(
            0..<settings.idle, path: { paths[$0] }, events: { _ in events }, outcome: measurements.connectionOutcome
        )
        let opened = clients.compactMap { $0 }.count
        log("idle: \(opened) open; holding them for \(settings.idleHold) s")
        try await Task.sleep(for: .milliseconds(Int64(settings.idleHold * 1000)))
        let after = try await hubs.processReadings()
        var rssBefore = 0
        var rssAfter = 0
        for (first, last) in zip(before, after) {
            guard let first, let last else { continue }
            rssBefore += first.residentBytes
            rssAfter += last.residentBytes
        }
        let stillOpen = measurements[.connectionsOpen]

        let extra: String
        var refused = false
        do {
            let client = try await connector.open(
                settings.idle, node: hubs.node(for: settings.idle), path: paths[settings.idle], events: WebSocketClient.Events()
            )
            extra = "accepted (the hub's cap is above \(stillOpen))"
            await client.close()
        } catch {
            if case .refused(503)? = error as? WebSocketClient.OpenError { refused = true }
            extra = refused ? "refused with HTTP 503" : "failed: \(error)"
        }
        let health = await hubs[hubs.node(for: settings.idle)].healthStatus()
        progress.cancel()
        log("idle: one more connection \(extra); /healthz \(health.map(String.init) ?? "no answer"); closing")
        await Connector.closeAll(clients)
        return IdleResults(
            connections: stillOpen, failures: measurements.connectionFailureReasons, hubRssBytes: rssAfter,
            hubRssBytesBefore: rssBefore,
            bytesPerConnection: stillOpen > 0 ? Double(rssAfter - rssBefore) / Double(stillOpen) : 0,
            extraConnection: extra, extraRefusedCleanly: refused && health == 200, healthzAfter: health
        )
    }
}
