import BenchSupport
import NIOCore
import SocketClient

/// The transport alone: as many connections as drivers, each sending a frame of the drivers'
/// size at the GPS rate to the hub process's bare `/bench/echo` route, with the same warm-up and
/// window. The frame carries its scheduled time in `timestamp`; the latency is the round trip.
struct BaselinePhase {
    let settings: LoadTestSettings
    let connector: Connector
    let log: @Sendable (String) -> Void

    func run() async throws -> PhaseResults {
        let measurements = Measurements(nodes: connector.hubs.count)
        let city = CityModel(drivers: settings.drivers)
        var random = SplitMix64(seed: settings.seed)
        let points = (0..<settings.drivers).map { _ in city.coordinates(of: city.position(of: city.randomIntersection(using: &random))) }
        log("baseline: opening \(settings.drivers) WebSockets to /bench/echo")
        let opening = MonotonicClock.nanoseconds()
        let progress = Task { await PhaseTicker(phase: "echo", measurements: measurements, log: log).run(from: opening) }
        let clients = await connector.open(
            0..<settings.drivers, path: { _ in "/bench/echo" },
            events: { _ in
                WebSocketClient.Events(
                    text: { buffer in
                        measurements.add(.framesIn)
                        if case .echoedFix(let scheduled) = HubFrame.parse(buffer) { measurements.latency(.location, sentAt: scheduled) }
                    },
                    closed: { measurements.add(.connectionsOpen, -1) }
                )
            },
            outcome: measurements.connectionOutcome
        )
        guard clients.contains(where: { $0 != nil }) else {
            progress.cancel()
            throw HubEndpoint.Unusable(
                description: "No WebSocket to /bench/echo opened (\(measurements.connectionFailureReasons)); is the hub started with --bench-routes?"
            )
        }

        let start = MonotonicClock.nanoseconds()
        let end = start + UInt64((settings.warmup + settings.duration) * 1e9)
        let frames = Task {
            await PacedSchedule(slots: settings.drivers, hz: settings.gpsHz).run(from: start, until: end) { slot, scheduled in
                let heading = Double(slot % 4) * 90
                clients[slot]?.send(ClientFrames.location(points[slot], heading: heading, speed: settings.speed, timestamp: scheduled))
                measurements.add(.framesOut)
                measurements.add(.locationsSent)
            }
        }
        try await Task.sleep(for: .milliseconds(Int64(settings.warmup * 1000)))
        let first = try await Checkpoint.take(measurements, hubs: connector.hubs)
        measurements.startWindow(at: first.time)
        try await Task.sleep(for: .milliseconds(Int64(settings.duration * 1000)))
        measurements.endWindow(at: MonotonicClock.nanoseconds())
        let last = try await Checkpoint.take(measurements, hubs: connector.hubs)
        _ = await frames.value
        try await Task.sleep(for: .milliseconds(500))
        progress.cancel()
        await Connector.closeAll(clients)
        return PhaseResults(from: first, to: last, measurements: measurements)
    }
}
