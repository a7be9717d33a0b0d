import BenchSupport
import NIOCore

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
/// source addresses, holds them (the client answers pings), and reads the hub's resident memory
/// before and after; then tries one connection more and checks `/healthz`.
struct IdlePhase {
    let settings: LoadTestSettings
    let endpoint: HubEndpoint
    let connector: Connector
    let log: @Sendable (String) -> Void

    func run() async throws -> IdleResults {
        // One more user than sockets, for the extra connection at the end.
        let users = try await endpoint.benchUsers(prefix: "\(settings.userPrefix)-idle", count: settings.idle + 1, group: "rider")
        let paths = users.map { "/taxi/?token=" + $0.access }
        try await Task.sleep(for: .seconds(1))
        let before = try await endpoint.processReading()
        let measurements = Measurements()
        log("idle: opening \(settings.idle) WebSockets over \(max(1, connector.sources.addresses.count)) source address(es)")
        let opening = MonotonicClock.nanoseconds()
        let progress = Task { await ProgressLine(phase: "idle", measurements: measurements, log: log).run(from: opening) }
        let events = WebSocketClient.Events(
            text: { _ in measurements.add(.framesIn) }, closed: { measurements.add(.connectionsOpen, -1) }
        )
        let clients = await connector.open(
            0..<settings.idle, path: { paths[$0] }, events: { _ in events }, outcome: measurements.connectionOutcome
        )
        let opened = clients.compactMap { $0 }.count
        log("idle: \(opened) open; holding them for \(settings.idleHold) s")
        try await Task.sleep(for: .milliseconds(Int64(settings.idleHold * 1000)))
        let after = try await endpoint.processReading()
        let stillOpen = measurements[.connectionsOpen]

        let extra: String
        var refused = false
        do {
            let client = try await connector.open(settings.idle, path: paths[settings.idle], events: WebSocketClient.Events())
            extra = "accepted (the hub's cap is above \(stillOpen))"
            await client.close()
        } catch {
            if case .refused(503)? = error as? WebSocketClient.OpenError { refused = true }
            extra = refused ? "refused with HTTP 503" : "failed: \(error)"
        }
        let health = await endpoint.healthStatus()
        progress.cancel()
        log("idle: one more connection \(extra); /healthz \(health.map(String.init) ?? "no answer"); closing")
        await Connector.closeAll(clients)
        return IdleResults(
            connections: stillOpen, failures: measurements.connectionFailureReasons, hubRssBytes: after.residentBytes,
            hubRssBytesBefore: before.residentBytes,
            bytesPerConnection: stillOpen > 0 ? Double(after.residentBytes - before.residentBytes) / Double(stillOpen) : 0,
            extraConnection: extra, extraRefusedCleanly: refused && health == 200, healthzAfter: health
        )
    }
}
