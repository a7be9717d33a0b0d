import BenchSupport
import NIOCore

/// The hub under load: D drivers sending fixes at the GPS rate, R riders requesting trips near
/// them (each again after its pause, or on the `tripRate` schedule), drivers racing for each
/// trip, trips driven to completion. After the warm-up, one window of `duration` seconds is measured. Sockets that close reconnect and resume (`ClientPool`);
/// with `dropEvery`, a share of them is dropped on purpose every so often.
struct LoadPhase {
    let settings: LoadTestSettings
    let connector: Connector
    var recorder: Recorder? = nil
    let log: @Sendable (String) -> Void

    func run() async throws -> PhaseResults {
        let hubs = connector.hubs
        log(
            "creating or reusing \(settings.drivers) drivers and \(settings.riders) riders via /bench/users"
                + (hubs.count > 1 ? " on each of \(hubs.count) hubs" : "")
        )
        let batches = [
            HubNodes.Batch(prefix: "\(settings.userPrefix)-driver", count: settings.drivers, group: "driver"),
            HubNodes.Batch(prefix: "\(settings.userPrefix)-rider", count: settings.riders, group: "rider"),
        ]
        let made = try await hubs.benchUsers(batches)
        var warnings: [String] = []
        for (node, reason) in made.unreachable.sorted(by: { $0.key < $1.key }) {
            warnings.append("\(hubs[node].base) did not answer at the start (\(reason)): its clients began on the next URL.")
            log("WARNING: " + warnings[warnings.count - 1])
        }
        let driverUsers = Array(made.users.prefix(settings.drivers))
        let riderUsers = Array(made.users.dropFirst(settings.drivers))
        let flood = settings.loginRate > 0
            ? LoginFlood(
                endpoints: made.reachable.map { hubs[$0] }, rate: settings.loginRate, accounts: settings.loginAccounts, prefix: settings.userPrefix,
                period: settings.loginPeriod
            )
            : nil
        if let flood { log("signing up or reusing \(flood.accounts) accounts for the log-in flood (bcrypt on the hub: a moment)") }
        let loginUsernames = try await flood?.prepareAccounts() ?? []
        let city = CityModel(drivers: settings.drivers)
        let measurements = Measurements(nodes: hubs.count)
        let traffic = CityTraffic(
            settings: settings, city: city, measurements: measurements, loops: connector.group,
            drivers: driverUsers.enumerated().map { index, user in
                SimulatedDriver(id: user.id, city: city, speed: settings.speed, seed: settings.seed &* 1_000_003 &+ UInt64(index))
            },
            riders: riderUsers.enumerated().map { index, user in
                SimulatedRider(id: user.id, seed: settings.seed &* 2_000_003 &+ UInt64(index))
            }
        )
        let pool = ClientPool(
            traffic: traffic, connector: connector,
            tokens: BenchTokens(tokens: made.tokens, hubs: hubs, batches: batches), recorder: recorder
        )
        log(
            "city: \(city.blocks)×\(city.blocks) blocks of \(Int(city.blockLength)) m; opening \(settings.drivers + settings.riders) WebSockets"
        )
        let opening = MonotonicClock.nanoseconds()
        let progress = Task {
            await PhaseTicker(phase: "load", measurements: measurements, recorder: recorder, log: log).run(from: opening)
        }
        let clients = await pool.openAll()
        guard clients.contains(where: { $0 != nil }) else {
            progress.cancel()
            traffic.stop()
            throw HubEndpoint.Unusable(description: "No WebSocket opened: \(measurements.connectionFailureReasons)")
        }
        let watchdog = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                traffic.watch()
            }
        }
        let drops = Task { await dropSockets(pool) }

        let start = MonotonicClock.nanoseconds()
        if settings.tripRate == 0 {
            let ramp = max(0.5, settings.warmup)
            for (index, rider) in traffic.riderList.enumerated() {
                let loop = clients[settings.drivers + index]?.channel.eventLoop ?? traffic.loops.next()
                let delay = Int64(ramp * 1000 * Double(index) / Double(max(1, settings.riders)))
                loop.scheduleTask(in: .milliseconds(delay)) { rider.requestTrip(in: traffic) }
            }
        }
        let end = start + UInt64((settings.warmup + settings.duration) * 1e9)
        let fixes = Task {
            await PacedSchedule(slots: settings.drivers, hz: settings.gpsHz).run(from: start, until: end) { slot, scheduled in
                traffic.driverList[slot].tick(scheduledAt: scheduled, in: traffic)
            }
        }
        let trips = Task { await Self.requestTrips(traffic, from: start, until: end) }

        try await Task.sleep(for: .milliseconds(Int64(settings.warmup * 1000)))
        let first = try await Checkpoint.take(measurements, hubs: hubs)
        measurements.startWindow(at: first.time)
        log("warm-up over; measuring for \(settings.duration) s")
        let windowEnd = first.time + UInt64(settings.duration * 1e9)
        let logins = flood.map { flood in
            Task { await flood.run(usernames: loginUsernames, from: first.time, until: windowEnd, measurements: measurements) }
        }
        try await Task.sleep(for: .milliseconds(Int64(settings.duration * 1000)))
        measurements.endWindow(at: MonotonicClock.nanoseconds())
        let last = try await Checkpoint.take(measurements, hubs: hubs)
        _ = await fixes.value
        await trips.value
        traffic.stop()
        drops.cancel()
        watchdog.cancel()
        try await Task.sleep(for: .seconds(1))
        var results = PhaseResults(from: first, to: last, measurements: measurements)
        (results.waitingAtEnd, results.oldestWaitingSeconds) = traffic.waitingRequests()
        results.warnings = warnings
        results.logins = await logins?.value
        try await leaveNoTripOpen(traffic)
        progress.cancel()
        await Connector.closeAll(pool.openClients)
        return results
    }

    /// With `tripRate`: request k is due at `start` + k / rate and goes to the next rider, round
    /// robin, that has no trip and a socket; when none has, it is counted as skipped.
    private static func requestTrips(_ traffic: CityTraffic, from start: UInt64, until end: UInt64) async {
        let riders = traffic.riderList
        guard traffic.settings.tripRate > 0, !riders.isEmpty else { return }
        var next = 0
        await PacedSchedule(slots: 1, hz: traffic.settings.tripRate).run(from: start, until: end) { _, scheduled in
            for _ in riders.indices {
                let rider = riders[next]
                next = (next + 1) % riders.count
                if rider.requestTrip(in: traffic, scheduledAt: scheduled) == .sent { return }
            }
            traffic.measurements.add(.tripRequestsSkipped)
        }
    }

    /// Every `dropEvery` seconds, drops `dropShare` of the open sockets, until cancelled.
    private func dropSockets(_ pool: ClientPool) async {
        guard settings.dropEvery > 0, settings.dropShare > 0 else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(settings.dropEvery))
            guard !Task.isCancelled else { return }
            let dropped = pool.drop(share: settings.dropShare)
            recorder?.drop(clients: dropped)
            log("dropped \(dropped) sockets")
        }
    }

    /// Cancels the requests still waiting, then completes the trips still driven, so the next run
    /// with the same users starts with every driver free. (Its errors are not in the results.)
    private func leaveNoTripOpen(_ traffic: CityTraffic) async throws {
        for rider in traffic.riderList { rider.cancelWaitingTrip() }
        try await Task.sleep(for: .milliseconds(300))
        for driver in traffic.driverList { driver.finishTrip() }
        try await Task.sleep(for: .milliseconds(500))
    }
}
