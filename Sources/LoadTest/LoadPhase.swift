import BenchSupport
import NIOCore

/// The hub under load: D drivers sending fixes at the GPS rate, R riders requesting trips near
/// them, drivers racing for each trip, trips driven to completion. After the warm-up, one window
/// of `duration` seconds is measured.
struct LoadPhase {
    let settings: LoadTestSettings
    let endpoint: HubEndpoint
    let connector: Connector
    let log: @Sendable (String) -> Void

    func run() async throws -> PhaseResults {
        log("creating or reusing \(settings.drivers) drivers and \(settings.riders) riders via /bench/users")
        let driverUsers = try await endpoint.benchUsers(prefix: "\(settings.userPrefix)-driver", count: settings.drivers, group: "driver")
        let riderUsers = try await endpoint.benchUsers(prefix: "\(settings.userPrefix)-rider", count: settings.riders, group: "rider")
        let city = CityModel(drivers: settings.drivers)
        let measurements = Measurements()
        let simulation = Simulation(
            settings: settings, city: city, measurements: measurements,
            drivers: driverUsers.enumerated().map { index, user in
                SimulatedDriver(
                    id: user.id, token: user.access, city: city, speed: settings.speed, seed: settings.seed &* 1_000_003 &+ UInt64(index)
                )
            },
            riders: riderUsers.enumerated().map { index, user in
                SimulatedRider(id: user.id, token: user.access, seed: settings.seed &* 2_000_003 &+ UInt64(index))
            }
        )
        log(
            "city: \(city.blocks)×\(city.blocks) blocks of \(Int(city.blockLength)) m; opening \(settings.drivers + settings.riders) WebSockets"
        )
        let opening = MonotonicClock.nanoseconds()
        let progress = Task { await ProgressLine(phase: "load", measurements: measurements, log: log).run(from: opening) }
        let clients = await openClients(simulation)
        for (driver, client) in zip(simulation.driverList, clients) {
            if let client { driver.attach(client) }
        }
        for (rider, client) in zip(simulation.riderList, clients.dropFirst(settings.drivers)) {
            if let client { rider.attach(client) }
        }
        guard clients.contains(where: { $0 != nil }) else {
            progress.cancel()
            throw HubEndpoint.Unusable(description: "No WebSocket opened: \(measurements.connectionFailureReasons)")
        }

        let start = MonotonicClock.nanoseconds()
        let ramp = max(0.5, settings.warmup)
        for (index, rider) in simulation.riderList.enumerated() {
            guard let client = clients[settings.drivers + index] else { continue }
            let delay = Int64(ramp * 1000 * Double(index) / Double(max(1, settings.riders)))
            client.channel.eventLoop.scheduleTask(in: .milliseconds(delay)) { rider.requestTrip(in: simulation) }
        }
        let end = start + UInt64((settings.warmup + settings.duration) * 1e9)
        let fixes = Task {
            await PacedSchedule(slots: settings.drivers, hz: settings.gpsHz).run(from: start, until: end) { slot, scheduled in
                simulation.driverList[slot].tick(scheduledAt: scheduled, in: simulation)
            }
        }

        try await Task.sleep(for: .milliseconds(Int64(settings.warmup * 1000)))
        let first = try await Checkpoint.take(measurements, hub: endpoint)
        measurements.startWindow(at: first.time)
        log("warm-up over; measuring for \(settings.duration) s")
        try await Task.sleep(for: .milliseconds(Int64(settings.duration * 1000)))
        measurements.endWindow(at: MonotonicClock.nanoseconds())
        let last = try await Checkpoint.take(measurements, hub: endpoint)
        _ = await fixes.value
        simulation.stop()
        try await Task.sleep(for: .seconds(1))
        let results = PhaseResults(from: first, to: last, measurements: measurements)
        try await leaveNoTripOpen(simulation)
        progress.cancel()
        await Connector.closeAll(clients)
        return results
    }

    /// Cancels the requests still waiting, then completes the trips still driven, so the next run
    /// with the same users starts with every driver free. (Its errors are not in the results.)
    private func leaveNoTripOpen(_ simulation: Simulation) async throws {
        for rider in simulation.riderList { rider.cancelWaitingTrip() }
        try await Task.sleep(for: .milliseconds(300))
        for driver in simulation.driverList { driver.finishTrip() }
        try await Task.sleep(for: .milliseconds(500))
    }

    /// Drivers first, then riders; every text frame goes to its client's simulated user.
    private func openClients(_ simulation: Simulation) async -> [WebSocketClient?] {
        let measurements = simulation.measurements
        let drivers = settings.drivers
        return await connector.open(
            0..<(drivers + settings.riders),
            path: { index in
                "/taxi/?token=" + (index < drivers ? simulation.driverList[index].token : simulation.riderList[index - drivers].token)
            },
            events: { index in
                WebSocketClient.Events(
                    text: { buffer in
                        measurements.add(.framesIn)
                        let frame = HubFrame.parse(buffer)
                        if index < drivers {
                            simulation.driverList[index].received(frame, in: simulation)
                        } else {
                            simulation.riderList[index - drivers].received(frame, in: simulation)
                        }
                    },
                    closed: {
                        measurements.add(.connectionsOpen, -1)
                        if simulation.isRunning { measurements.add(.unexpectedCloses) }
                    }
                )
            },
            outcome: measurements.connectionOutcome
        )
    }
}
