import Foundation
@_spi(Simulation) import Hub
import Logging
import Persistence
import Synchronization

/// One seeded run of the real hub under the simulation's scheduler: the workload, the faults and
/// the schedule all come from `seed`, and the invariants are checked after every step.
///
/// Runs on one thread (the harness thread) from start to end: call `run()` from a thread of its
/// own (`Simulator` does), never from a cooperative-pool thread, since store I/O blocks it.
final class Simulation {
    /// A simulated rider or driver: at most one connection and one operation at a time.
    struct Client {
        let principal: Principal
        var mailbox: SimMailbox?
        var busy = false
        var joined: Set<UUID> = []
        /// The newest `seq` the client has seen of each trip, over all its connections.
        var lastSeen: [UUID: Int64] = [:]
        /// Trips offered to this driver that it saw waiting, oldest first.
        var offers: [UUID] = []
        var position: GeoPoint
    }

    /// What one connection received of one trip.
    struct Stream {
        var live: [Int64] = []
        var replayed: [Int64] = []
        var coalesced: Set<Int64> = []
        /// Events after this `seq` must all arrive (from `resume`); nil: from the first one received.
        var lowerBound: Int64?
        /// The `seq` of a current state `resume` sent instead of a replay (it may repeat a live one).
        var currentState: Int64?
    }

    struct Connection {
        let client: Int
        var streams: [UUID: Stream] = [:]
        /// Its connect-and-resume operation has not ended yet.
        var resuming = true
    }

    /// What the harness knows of one trip.
    struct TripModel {
        let number: Int
        /// The trip as the index showed it after the last step.
        var last: Trip?
        /// `seq`s of its state changes (creation and each status change).
        var stateChanges: Set<Int64> = []
        /// Drivers whose accept succeeded (since the last recovery).
        var winners: Set<Int> = []
        /// Acknowledged states: the step the client got the reply, and the trip.
        var acks: [(step: Int, trip: Trip)] = []
        /// Locations some client saw, with the step it saw them.
        var seenLocations: [(step: Int, seq: Int64)] = []
        var trace: [String] = []
    }

    struct Failure: Error {
        let message: String
        let trip: UUID?
    }

    static let center = GeoPoint(lat: 52.52, lng: 13.405)

    let seed: UInt64
    let options: SimulationOptions
    private var random: SimRandom
    private let scheduler = SimScheduler()
    private let clock = SimClock()
    private let ledger = Ledger()
    private let directory: String
    private var realStore: SQLiteSnapshotStore!
    private var store: SimStore!
    private var hub: Hub!
    private var service: SnapshotService!
    private var status: SnapshotStatus!

    private var step = 0
    /// `step`, for the store wrapper (which runs inside jobs).
    private let stepCounter = StepCounter()
    private let ids: IDSource
    private var invariantChecks = 0
    private var operations = 0
    private var connectionNumbers: UInt64 = 0
    private var tripIDs: UInt64 = 0
    private var clients: [Client] = []
    private var connections: [UInt64: Connection] = [:]
    private var trips: [UUID: TripModel] = [:]
    private var flushInFlight = false
    private var pendingOperations = 0
    private var lastSuccessfulDrain = 0
    private var writes = 0
    private var failedWrites = 0
    private var crashes = 0
    private var staleResumes = 0
    /// Requests the hub refused, by error code (a lost accept race is `trip_taken`).
    private var refusals: [String: Int] = [:]
    private var replayedEvents = 0
    private var lostReplays = 0
    private var digest: UInt64 = 0xCBF2_9CE4_8422_2325
    private var recentLines: [String] = []
    /// Writes and failures the current hub's `SnapshotStatus` should count.
    private var statusWrites = 0
    private var statusFailures = 0

    init(seed: UInt64, options: SimulationOptions) {
        self.seed = seed
        self.options = options
        self.random = SimRandom(seed: seed)
        self.ids = IDSource(seed: seed)
        self.directory = URL(fileURLWithPath: options.directory).appendingPathComponent("run-\(seed)-\(UUID().uuidString)").path
    }

    /// Runs the workload, drains it, checks the end state and removes the run's files.
    func run() -> SimulationResult {
        scheduler.bindToCurrentThread()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var failure: SimulationFailure?
        do {
            try setUp()
            for _ in 0..<options.steps { try advance(workload: true) }
            try drain()
            try checkEnd()
        } catch let error as Failure {
            failure = SimulationFailure(seed: seed, step: step, message: error.message, trace: trace(of: error.trip))
        } catch {
            failure = SimulationFailure(seed: seed, step: step, message: "harness error: \(error)", trace: recentLines)
        }
        return SimulationResult(
            seed: seed, steps: step, jobs: scheduler.jobsRun, invariantChecks: invariantChecks, crashes: crashes,
            writes: writes, failedWrites: failedWrites, staleResumes: staleResumes, refusals: refusals,
            replayedEvents: replayedEvents, lostReplays: lostReplays, digest: digest, failure: failure
        )
    }

    // MARK: Set-up and the hub's life

    private func setUp() throws {
        realStore = try SQLiteSnapshotStore(directory: directory)
        let real = realStore!
        try BlockingBridge.run { try await real.migrate() }
        var faults = SimStore.Faults()
        if options.faults.contains(.store) {
            faults.failBefore = 0.15
            faults.failAfter = 0.05
            faults.stall = 0.2
        }
        store = SimStore(base: real, scheduler: scheduler, faults: faults, seed: random.next()) { [stepCounter] in
            stepCounter.value
        }
        buildHub()
        let riders = 2 + random.index(4)
        let drivers = 2 + random.index(6)
        for number in 0..<(riders + drivers) {
            let group: UserGroup = number < riders ? .rider : .driver
            guard
                let user = hub.users.create(
                    username: "\(group.rawValue)\(number)", firstName: "F\(number)", lastName: "L\(number)", group: group,
                    photo: nil, passwordHash: "x"
                )
            else { throw Failure(message: "could not create user \(number)", trip: nil) }
            clients.append(Client(principal: Principal(userID: user.id, group: group), position: nearCenter()))
        }
        // The accounts exist before the workload starts, as sign-ups long before it would.
        let users = hub.changes.drain()
        try BlockingBridge.run { try await real.write(users) }
        log("set-up: \(riders) riders, \(drivers) drivers")
        for index in clients.indices { reconnect(index) }
    }

    private func buildHub() {
        var settings = Hub.Settings()
        settings.plantedBug = options.plantedBug
        settings.historyLength = 64
        let ids = self.ids
        hub = Hub(
            settings: settings, executors: SimTripExecutors(scheduler: scheduler), clock: clock,
            newTripID: { ids.next() }
        )
        status = SnapshotStatus(started: clock.now())
        statusWrites = 0
        statusFailures = 0
        let hub = self.hub!
        let ledger = self.ledger
        service = SnapshotService(
            store: store, tracker: hub.changes, interval: .seconds(1), status: status,
            logger: Logger(label: "simulation", factory: { _ in SwiftLogNoOpLogHandler() })
        ) { persisted in
            ledger.countEvicted(persisted.trips.values.filter(\.status.isFinished).count)
            hub.evictPersisted(persisted.trips.values)
        }
    }

    /// Throws the hub away mid-flight (queued jobs, sleeping writes and connections are lost),
    /// checks that the store kept what the rules promise, and starts a new hub from it.
    private func crashAndRecover() throws {
        crashes += 1
        log("CRASH #\(crashes)")
        scheduler.abandonAll()
        _ = ledger.take()
        flushInFlight = false
        pendingOperations = 0
        for index in clients.indices {
            if let mailbox = clients[index].mailbox { try closeConnection(mailbox) }
            clients[index].mailbox = nil
            clients[index].busy = false
            clients[index].joined = []
            clients[index].offers = []
        }
        try absorbStoreRecords()
        let real = realStore!
        let stored = try BlockingBridge.run { () async throws -> ([User], [Trip], [UUID: [TrackPoint]]) in
            (try await real.loadUsers(), try await real.loadUnfinishedTrips(), try await real.loadUnfinishedTracks())
        }
        try checkNothingLost()
        buildHub()
        hub.restore(users: stored.0, trips: stored.1, tracks: stored.2)
        try checkRecovered(stored.1, tracks: stored.2)
        for index in clients.indices { reconnect(index) }
    }

    /// Runs what is still in flight to its end, without new operations or faults.
    private func drain() throws {
        store.faultsEnabled = false
        var idleRounds = 0
        while idleRounds < 50 {
            if scheduler.readyCount == 0 && pendingOperations == 0 && !flushInFlight { break }
            let before = scheduler.jobsRun
            try advance(workload: false)
            idleRounds = scheduler.jobsRun == before ? idleRounds + 1 : 0
        }
        guard scheduler.readyCount == 0, pendingOperations == 0, !flushInFlight else {
            throw Failure(message: "the run did not come to rest: \(pendingOperations) operations still pending", trip: nil)
        }
    }

    // MARK: Steps

    /// One step: the clock moves, due sleepers wake, then either a client starts an operation or
    /// one job runs, chosen by the seed; then every invariant is checked.
    private func advance(workload: Bool) throws {
        step += 1
        stepCounter.value = step
        clock.advance(byMicroseconds: Int64(random.index(20_000)))
        scheduler.wakeSleepers(at: step)
        if workload && (scheduler.readyCount == 0 || random.chance(0.3)) {
            startOperation()
        } else if let lane = scheduler.runOne(choice: random.index(1 << 30)) {
            log("run lane \(lane)", quiet: true)
        }
        try absorb()
        try checkStep()
        if workload, options.faults.contains(.crash), random.chance(1.0 / 400) {
            try crashAndRecover()
        }
    }

    private func startOperation() {
        if !flushInFlight, random.chance(0.05) {
            startFlush()
            return
        }
        if options.faults.contains(.slow), random.chance(0.03) {
            let index = random.index(clients.count)
            if let mailbox = clients[index].mailbox {
                mailbox.setSlow(!mailbox.isSlow)
                log("\(name(index)) \(mailbox.isSlow ? "stops" : "resumes") reading")
            }
            return
        }
        let idle = clients.indices.filter { !clients[$0].busy }
        guard !idle.isEmpty else { return }
        let index = idle[random.index(idle.count)]
        guard clients[index].mailbox != nil else {
            reconnect(index)
            return
        }
        if random.chance(0.04) {
            disconnect(index)
        } else if clients[index].principal.group == .rider {
            riderOperation(index)
        } else {
            driverOperation(index)
        }
    }

    private func riderOperation(_ index: Int) {
        let client = clients[index]
        let own = trips.filter { $0.value.last?.riderID == client.principal.userID }.sorted { $0.value.number < $1.value.number }
        let live = own.filter { !($0.value.last?.status.isFinished ?? true) }
        if live.count < 2, own.isEmpty || random.chance(0.6) {
            let pickUp: GeoPoint? = random.chance(0.8) ? nearCenter() : nil
            let request = TripRequest(pickUpAddress: "pick-up \(operations)", dropOffAddress: "drop-off", pickUpLocation: pickUp)
            perform(index, "requests a trip") { hub, principal, mailbox in
                do throws(HubError) {
                    return .created(try await hub.createTrip(request, by: principal, from: mailbox))
                } catch {
                    return .refused(error)
                }
            }
        } else if !own.isEmpty {
            let trip = own[random.index(own.count)].key
            perform(index, "cancels \(name(trip))", trip: trip) { hub, principal, _ in
                do throws(HubError) {
                    return .canceled(try await hub.cancelTrip(id: trip, by: principal))
                } catch {
                    return .refused(error)
                }
            }
        }
    }

    private func driverOperation(_ index: Int) {
        let client = clients[index]
        let driverID = client.principal.userID
        let choice = random.index(100)
        if choice < 40, let trip = client.offers.last {
            clients[index].offers.removeAll { $0 == trip }
            update(index, trip: trip, TripUpdate(status: .started, driverID: driverID), "accepts")
        } else if choice < 65 {
            let driving = trips.filter { $0.value.last?.driverID == driverID && !($0.value.last?.status.isFinished ?? true) }
            let known = trips.keys.sorted { trips[$0]!.number < trips[$1]!.number }
            guard let trip = driving.keys.min(by: { trips[$0]!.number < trips[$1]!.number }) ?? known.randomElement(using: &random)
            else { return }
            let current = trips[trip]?.last?.status ?? .requested
            // Mostly the next status in order; otherwise any status, forward, backward or repeated.
            let target =
                random.chance(0.7) && current < .completed
                ? TripStatus.allCases[current.rank + 1] : TripStatus.allCases[random.index(TripStatus.allCases.count)]
            update(index, trip: trip, TripUpdate(status: target), "sets \(target.rawValue) on")
        } else {
            let point = client.position
            let moved = GeoPoint(
                lat: point.lat + Double(random.index(201) - 100) * 1e-5, lng: point.lng + Double(random.index(201) - 100) * 1e-5
            )
            clients[index].position = moved
            let fix = LocationFix(
                point: moved, heading: Double(random.index(360)), speed: Double(random.index(30)), accuracy: 5,
                timestamp: Timestamp(microseconds: clock.now().microseconds - Int64(random.index(2_000_000)))
            )
            perform(index, "sends a location") { hub, principal, mailbox in
                do throws(HubError) {
                    try await hub.updateLocation(fix, by: principal, from: mailbox)
                    return .located
                } catch {
                    return .refused(error)
                }
            }
        }
    }

    private func update(_ index: Int, trip: UUID, _ update: TripUpdate, _ verb: String) {
        perform(index, "\(verb) \(name(trip))", trip: trip) { hub, principal, mailbox in
            do throws(HubError) {
                return .updated(try await hub.updateTrip(id: trip, update, by: principal, from: mailbox))
            } catch {
                return .refused(error)
            }
        }
    }

    /// Starts a client's operation as a task on a lane of its own.
    private func perform(
        _ index: Int, _ what: String, trip: UUID? = nil,
        _ body: @escaping @Sendable (Hub, Principal, SimMailbox) async -> Outcome
    ) {
        guard let mailbox = clients[index].mailbox else { return }
        clients[index].busy = true
        log("\(name(index)) \(what)", trip: trip)
        spawn(client: index) { [hub = hub!, principal = clients[index].principal] in
            await body(hub, principal, mailbox)
        }
    }

    private func spawn(client: Int?, _ body: @escaping @Sendable () async -> Outcome) {
        operations += 1
        pendingOperations += 1
        let operation = operations
        let ledger = self.ledger
        Task(executorPreference: scheduler.makeTaskExecutor()) {
            ledger.add(Ledger.Entry(operation: operation, client: client, outcome: await body()))
        }
    }

    private func startFlush() {
        flushInFlight = true
        log("snapshot starts")
        spawn(client: nil) { [service = service!] in
            do {
                try await service.flush()
                return .flushed(succeeded: true)
            } catch {
                return .flushed(succeeded: false)
            }
        }
    }

    private func disconnect(_ index: Int) {
        guard let mailbox = clients[index].mailbox else { return }
        log("\(name(index)) disconnects")
        try? closeConnection(mailbox)
        clients[index].mailbox = nil
        clients[index].busy = true
        clients[index].offers = []
        let joined = clients[index].joined
        clients[index].joined = []
        spawn(client: index) { [hub = hub!, principal = clients[index].principal] in
            await hub.disconnect(principal, mailbox: mailbox, joined: joined)
            return .disconnected
        }
    }

    /// Opens a new connection for the client; it then resumes every trip it joins that it saw before.
    private func reconnect(_ index: Int) {
        connectionNumbers += 1
        let mailbox = SimMailbox(connectionID: ConnectionID(connectionNumbers))
        connections[connectionNumbers] = Connection(client: index)
        clients[index].mailbox = mailbox
        clients[index].busy = true
        let lastSeen = clients[index].lastSeen
        log("\(name(index)) connects as c\(connectionNumbers)")
        spawn(client: index) { [hub = hub!, principal = clients[index].principal] in
            let joined = await hub.connect(principal, mailbox: mailbox)
            var resumes: [ResumeResult] = []
            for trip in joined.sorted() {
                guard let seen = lastSeen[trip] else { continue }
                do throws(HubError) {
                    let reply = try await hub.resume(tripID: trip, after: seen, by: principal, from: mailbox)
                    resumes.append(ResumeResult(tripID: trip, lastSeen: seen, reply: .success(reply)))
                } catch {
                    resumes.append(ResumeResult(tripID: trip, lastSeen: seen, reply: .failure(error)))
                }
            }
            return .connected(joined: joined, resumes: resumes)
        }
    }

    // MARK: Absorbing what happened

    /// Takes the outcomes of finished operations, what clients read and the store's writes.
    private func absorb() throws {
        for entry in ledger.take() {
            pendingOperations -= 1
            try absorb(entry)
        }
        for index in clients.indices {
            guard let mailbox = clients[index].mailbox else { continue }
            try absorb(mailbox, client: index)
        }
        try absorbStoreRecords()
    }

    private func absorb(_ entry: Ledger.Entry) throws {
        guard let index = entry.client else {
            if case .flushed(let succeeded) = entry.outcome {
                flushInFlight = false
                log("snapshot \(succeeded ? "written" : "failed")")
            }
            return
        }
        clients[index].busy = false
        let who = name(index)
        switch entry.outcome {
        case .created(let view):
            ensure(view.trip.id)
            trips[view.trip.id]!.acks.append((step, view.trip))
            clients[index].joined.insert(view.trip.id)
            log("\(who) got \(describe(view.trip))", trip: view.trip.id)
        case .updated(let view):
            let id = view.trip.id
            ensure(id)
            trips[id]!.acks.append((step, view.trip))
            clients[index].joined.insert(id)
            if view.trip.status == .started, view.trip.driverID == clients[index].principal.userID {
                trips[id]!.winners.insert(clients[index].principal.userID)
            }
            log("\(who) got \(describe(view.trip))", trip: id)
            invariantChecks += 1
            if model(id).winners.count > 1 {
                throw Failure(message: "\(name(id)) has more than one winner: drivers \(model(id).winners.sorted())", trip: id)
            }
        case .canceled(let view):
            ensure(view.trip.id)
            trips[view.trip.id]!.acks.append((step, view.trip))
            log("\(who) got \(describe(view.trip))", trip: view.trip.id)
        case .refused(let error):
            refusals[error.code.rawValue, default: 0] += 1
            log("\(who) refused: \(error.code.rawValue)")
        case .located:
            break
        case .connected(let joined, let resumes):
            clients[index].joined.formUnion(joined)
            if let mailbox = clients[index].mailbox, let number = connectionNumber(mailbox) {
                connections[number]!.resuming = false
            }
            for resume in resumes { try absorb(resume, client: index) }
            log("\(who) joined \(joined.count) trips, resumed \(resumes.count)")
        case .disconnected:
            log("\(who) disconnected")
        case .flushed, .actorStates:
            break
        }
    }

    private func absorb(_ resume: ResumeResult, client index: Int) throws {
        guard let mailbox = clients[index].mailbox, let number = connectionNumber(mailbox) else { return }
        let id = resume.tripID
        switch resume.reply {
        case .success(.replay(let events)):
            connections[number]?.streams[id, default: Stream()].lowerBound = resume.lastSeen
            replayedEvents += events.count
            log("\(name(index)) resumed \(name(id)) after \(resume.lastSeen): \(events.count) replayed", trip: id)
            if let current = hub.index.trip(id: id), resume.lastSeen > current.seq, events.isEmpty {
                staleResumes += 1
            }
        case .success(.currentState(let event)):
            connections[number]?.streams[id, default: Stream()].lowerBound = event.seq
            connections[number]?.streams[id, default: Stream()].currentState = event.seq
            log("\(name(index)) resumed \(name(id)) after \(resume.lastSeen): current state \(event.seq)", trip: id)
        case .failure(let error):
            log("\(name(index)) resume of \(name(id)) refused: \(error.code.rawValue)", trip: id)
        }
    }

    private func absorb(_ mailbox: SimMailbox, client index: Int) throws {
        guard let number = connectionNumber(mailbox) else { return }
        let (received, coalesced) = mailbox.take()
        for (trip, seq) in coalesced { connections[number]?.streams[trip, default: Stream()].coalesced.insert(seq) }
        for item in received {
            let event = item.event
            let id = event.tripID
            let seq = event.seq
            var stream = connections[number]?.streams[id] ?? Stream()
            invariantChecks += 1
            switch item.arrival {
            case .live:
                // A current state `resume` sends instead of a replay may repeat the newest live event.
                let resent = seq == stream.live.last && (stream.currentState == seq || connections[number]!.resuming)
                if let previous = stream.live.last, seq <= previous, !(resent && event.isTripState) {
                    throw Failure(
                        message: "c\(number) (\(name(index))) got \(name(id)) seq \(seq) live after seq \(previous)", trip: id
                    )
                }
                stream.live.append(seq)
            case .replay:
                if let previous = stream.replayed.last, seq <= previous {
                    throw Failure(message: "c\(number) got a replay of \(name(id)) out of order: \(seq) after \(previous)", trip: id)
                }
                if stream.live.contains(seq) {
                    throw Failure(message: "c\(number) got \(name(id)) seq \(seq) twice (live and replayed)", trip: id)
                }
                stream.replayed.append(seq)
            }
            connections[number]?.streams[id] = stream
            clients[index].lastSeen[id] = max(clients[index].lastSeen[id] ?? 0, seq)
            switch event {
            case .trip(let view):
                ensure(id)
                trips[id]!.stateChanges.insert(view.trip.seq)
                if view.trip.status == .requested, clients[index].principal.group == .driver, view.trip.driverID == nil {
                    clients[index].offers.removeAll { $0 == id }
                    clients[index].offers.append(id)
                } else {
                    clients[index].offers.removeAll { $0 == id }
                }
                log("c\(number) <- \(describe(view.trip))\(item.arrival == .replay ? " (replay)" : "")", trip: id)
            case .location:
                ensure(id)
                trips[id]!.seenLocations.append((step, seq))
                log("c\(number) <- \(name(id)) location \(seq)", trip: id, quiet: true)
            }
        }
    }

    private func absorbStoreRecords() throws {
        for record in store.takeRecords() {
            if record.succeeded {
                writes += 1
                statusWrites += 1
                lastSuccessfulDrain = max(lastSuccessfulDrain, record.drainStep)
            } else {
                failedWrites += 1
                statusFailures += 1
            }
            log("store write of \(record.changes.count) (drained at step \(record.drainStep)): \(record.succeeded ? "ok" : record.committed ? "committed, reply lost" : "failed")")
        }
    }

    // MARK: Invariants

    /// After every step: trips move forward with one winner, the driver map agrees with the
    /// trips, and the snapshot counters agree with the writes the store saw.
    private func checkStep() throws {
        let live = hub.index.allTrips().sorted { $0.id < $1.id }
        var seen: Set<UUID> = []
        for trip in live {
            seen.insert(trip.id)
            try checkMove(of: trip)
        }
        for (id, model) in trips.sorted(by: { $0.value.number < $1.value.number }) where model.last != nil && !seen.contains(id) {
            invariantChecks += 1
            // Evicted: only a finished trip, and only once the store holds it.
            guard model.last!.status.isFinished else {
                throw Failure(message: "\(name(id)) vanished from the hub while \(model.last!.status.rawValue)", trip: id)
            }
            trips[id]?.last = nil
        }
        try checkDriverMap(live)
        invariantChecks += 1
        let counted = status.current
        guard counted.totalWrites == statusWrites, counted.totalFailures == statusFailures else {
            throw Failure(
                message: "snapshot status counts \(counted.totalWrites) writes and \(counted.totalFailures) failures; the store saw \(statusWrites) and \(statusFailures)",
                trip: nil
            )
        }
    }

    private func checkMove(of trip: Trip) throws {
        invariantChecks += 1
        let id = trip.id
        guard let old = model(id).last else {
            if trips[id]!.acks.isEmpty, trips[id]!.stateChanges.isEmpty, trip.status != .requested || trip.seq != 1 {
                throw Failure(message: "\(name(id)) appeared as \(describe(trip)), not as a new request", trip: id)
            }
            trips[id]!.last = trip
            trips[id]!.stateChanges.insert(trip.seq)
            return
        }
        guard old != trip else { return }
        trips[id]!.last = trip
        log("hub: \(describe(trip))", trip: id)
        if old.status.isFinished {
            throw Failure(message: "\(name(id)) changed after it finished: \(describe(old)) -> \(describe(trip))", trip: id)
        }
        if trip.status <= old.status {
            throw Failure(message: "\(name(id)) moved backwards or stood still: \(describe(old)) -> \(describe(trip))", trip: id)
        }
        if trip.status == .canceled, !(old.status == .requested || old.status == .started) {
            throw Failure(message: "\(name(id)) was canceled from \(old.status.rawValue)", trip: id)
        }
        if let driver = old.driverID, trip.driverID != driver {
            throw Failure(message: "\(name(id)) changed driver: \(describe(old)) -> \(describe(trip))", trip: id)
        }
        if trip.seq <= old.seq {
            throw Failure(message: "\(name(id)) changed without a new seq: \(describe(old)) -> \(describe(trip))", trip: id)
        }
        trips[id]!.stateChanges.insert(trip.seq)
    }

    private func checkDriverMap(_ live: [Trip]) throws {
        let byID = Dictionary(uniqueKeysWithValues: live.map { ($0.id, $0) })
        for client in clients where client.principal.group == .driver {
            invariantChecks += 1
            let driver = client.principal.userID
            guard let active = hub.drivers.activeTrip(of: driver) else { continue }
            guard let trip = byID[active], trip.status.isActive, trip.driverID == driver else {
                let state = byID[active].map(describe) ?? "not live"
                throw Failure(message: "driver \(driver) is busy with \(name(active)), which is \(state)", trip: active)
            }
        }
        for trip in live where trip.status.isActive {
            invariantChecks += 1
            guard let driver = trip.driverID, hub.drivers.activeTrip(of: driver) == trip.id else {
                throw Failure(message: "the driver of \(describe(trip)) is not busy with it in the driver map", trip: trip.id)
            }
        }
        var placed: Set<ConnectionID> = []
        for (_, members) in hub.drivers.cellMembership() {
            invariantChecks += 1
            guard placed.isDisjoint(with: members) else {
                throw Failure(message: "a driver connection is in two cells of the driver map", trip: nil)
            }
            placed.formUnion(members)
        }
    }

    /// A connection ends: every state change in the range it followed must have reached it, and
    /// a rider (who sends no locations) must have every event in it, locations coalesced excepted.
    private func closeConnection(_ mailbox: SimMailbox) throws {
        guard let number = connectionNumber(mailbox), let connection = connections[number] else { return }
        try absorb(mailbox, client: connection.client)
        let unread = mailbox.close()
        connections[number] = nil
        let isRider = clients[connection.client].principal.group == .rider
        for (id, stream) in connection.streams.sorted(by: { $0.key < $1.key }) {
            let received = Set(stream.live + stream.replayed)
            guard let top = received.max(), let first = stream.lowerBound.map({ $0 + 1 }) ?? received.min(), first <= top
            else { continue }
            invariantChecks += 1
            let changes = trips[id]?.stateChanges ?? []
            let missed = (first...top).filter { seq in
                !received.contains(seq) && (changes.contains(seq) || (isRider && !stream.coalesced.contains(seq)))
            }
            guard !missed.isEmpty else { continue }
            // Replayed events queue behind live ones with a higher `seq` (protocol §3.5). When the
            // connection drops in between, the client has read the higher `seq` and resumes after
            // it: the replay is lost for good. A finding, counted, not a failure of the run.
            let unreadReplays = Set(unread.filter { $0.arrival == .replay && $0.event.tripID == id }.map(\.event.seq))
            if missed.allSatisfy(unreadReplays.contains) {
                lostReplays += missed.count
                log("c\(number) (\(name(connection.client))) closed before reading the replay of \(name(id)) seq \(missed)", trip: id)
                continue
            }
            throw Failure(
                message: "c\(number) (\(name(connection.client))) missed \(name(id)) seq \(missed) between \(first) and \(top)", trip: id
            )
        }
    }

    /// Before a recovery: every change acknowledged before the drain of the last successful
    /// snapshot is in the store, and every location a client saw before it.
    private func checkNothingLost() throws {
        let real = realStore!
        for (id, model) in trips.sorted(by: { $0.value.number < $1.value.number }) {
            guard let required = model.acks.last(where: { $0.step < lastSuccessfulDrain })?.trip else { continue }
            invariantChecks += 1
            let stored = try BlockingBridge.run { try await real.trip(id: id) }
            guard let stored, stored.status >= required.status, stored.seq >= required.seq else {
                throw Failure(
                    message: "lost \(describe(required)), acknowledged before the last snapshot; the store has \(stored.map(describe) ?? "nothing")",
                    trip: id
                )
            }
            let mustHave = model.seenLocations.filter { $0.step < lastSuccessfulDrain }.map(\.seq)
            guard !mustHave.isEmpty else { continue }
            invariantChecks += 1
            let track = Set(try BlockingBridge.run { try await real.track(of: id) }.map(\.seq))
            let lost = mustHave.filter { !track.contains($0) }
            guard lost.isEmpty else {
                throw Failure(message: "lost track points \(lost) of \(name(id)), seen before the last snapshot", trip: id)
            }
        }
    }

    /// After a recovery: the hub's trips are the store's unfinished ones (their `seq` going on
    /// from their tracks), and the harness takes them as its new baseline.
    private func checkRecovered(_ stored: [Trip], tracks: [UUID: [TrackPoint]]) throws {
        let live = hub.index.allTrips().sorted { $0.id < $1.id }
        invariantChecks += 1
        let expected = stored.map { trip -> Trip in
            var trip = trip
            trip.seq = max(trip.seq, tracks[trip.id]?.last?.seq ?? 0)
            return trip
        }.sorted { $0.id < $1.id }
        var indexed = live
        for index in indexed.indices { indexed[index].seq = expected.first { $0.id == indexed[index].id }?.seq ?? indexed[index].seq }
        guard live.map(\.id) == expected.map(\.id), indexed.map(\.status) == expected.map(\.status) else {
            throw Failure(message: "after recovery the hub has \(live.count) trips, the store \(expected.count)", trip: nil)
        }
        for trip in expected {
            invariantChecks += 1
            guard hub.tripActor(id: trip.id) != nil else {
                throw Failure(message: "\(name(trip.id)) has no actor after recovery", trip: trip.id)
            }
        }
        // The new hub starts a new history: what was acknowledged or seen before is either in the
        // store (and checked above) or lost by the rules; `seq`s the hub forgot may be used again.
        for (id, _) in trips {
            trips[id]!.last = nil
            trips[id]!.winners = []
            trips[id]!.acks = []
            trips[id]!.seenLocations = []
            trips[id]!.stateChanges = []
        }
        for trip in live {
            trips[trip.id]!.last = trip
            if let driver = trip.driverID { trips[trip.id]!.winners = [driver] }
            log("recovered \(describe(trip))", trip: trip.id)
        }
    }

    /// At the end, at rest: the actors agree with the index, the driver map counts the connected
    /// drivers, every connection got what it should have, and the store, written one last time,
    /// equals the hub.
    private func checkEnd() throws {
        invariantChecks += 1
        let connectedDrivers = clients.filter { $0.principal.group == .driver && $0.mailbox != nil }.count
        guard hub.drivers.count == connectedDrivers else {
            throw Failure(message: "the driver map counts \(hub.drivers.count) drivers; \(connectedDrivers) are connected", trip: nil)
        }
        let live = hub.index.allTrips().sorted { $0.id < $1.id }
        spawn(client: nil) { [hub = hub!] in
            var states: [Trip] = []
            for trip in live { if let actor = hub.tripActor(id: trip.id) { states.append(await actor.current) } }
            return .actorStates(states)
        }
        var actors: [Trip]?
        while actors == nil, scheduler.runOne(choice: random.index(1 << 30)) != nil {
            for entry in ledger.take() {
                pendingOperations -= 1
                if case .actorStates(let states) = entry.outcome { actors = states }
            }
        }
        for (trip, actor) in zip(live, actors ?? []) {
            invariantChecks += 1
            var indexed = trip
            indexed.seq = actor.seq
            guard indexed == actor else {
                throw Failure(message: "index has \(describe(trip)), the actor \(describe(actor))", trip: trip.id)
            }
        }
        for index in clients.indices {
            if let mailbox = clients[index].mailbox { try closeConnection(mailbox) }
        }
        startFlush()
        while flushInFlight, scheduler.runOne(choice: random.index(1 << 30)) != nil { try absorb() }
        try absorbStoreRecords()
        invariantChecks += 1
        let real = realStore!
        let stored = try BlockingBridge.run { try await real.loadUnfinishedTrips() }.sorted { $0.id < $1.id }
        let unfinished = hub.index.allTrips().filter { !$0.status.isFinished }.sorted { $0.id < $1.id }
        guard stored.map(\.id) == unfinished.map(\.id), stored.map(\.status) == unfinished.map(\.status) else {
            throw Failure(message: "after the final snapshot the store has \(stored.count) unfinished trips, the hub \(unfinished.count)", trip: nil)
        }
    }

    // MARK: Helpers

    /// The harness's model of a trip, made on first sight (numbered in order of first sight).
    private func model(_ id: UUID) -> TripModel {
        ensure(id)
        return trips[id]!
    }

    private func ensure(_ id: UUID) {
        if trips[id] == nil { trips[id] = TripModel(number: trips.count + 1) }
    }

    private func connectionNumber(_ mailbox: SimMailbox) -> UInt64? {
        let number = mailbox.connectionID.rawValue
        return connections[number] == nil ? nil : number
    }

    private func nearCenter() -> GeoPoint {
        GeoPoint(
            lat: Self.center.lat + Double(random.index(2001) - 1000) * 1e-5,
            lng: Self.center.lng + Double(random.index(2001) - 1000) * 1e-5
        )
    }

    private func name(_ client: Int) -> String {
        let principal = clients[client].principal
        return "\(principal.group == .rider ? "rider" : "driver") \(principal.userID)"
    }

    private func name(_ trip: UUID) -> String {
        "T\(model(trip).number)"
    }

    private func describe(_ trip: Trip) -> String {
        "\(name(trip.id)) \(trip.status.rawValue) seq \(trip.seq) driver \(trip.driverID.map(String.init) ?? "-")"
    }

    /// Adds a line to the trace (and the digest); `quiet` lines count in the digest only.
    private func log(_ line: String, trip: UUID? = nil, quiet: Bool = false) {
        let text = "\(step): \(line)"
        for byte in text.utf8 {
            digest = (digest ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        guard !quiet else { return }
        if options.printTrace { FileHandle.standardError.write(Data((text + "\n").utf8)) }
        recentLines.append(text)
        if recentLines.count > 40 { recentLines.removeFirst(recentLines.count - 40) }
        if let trip, trips[trip] != nil {
            trips[trip]!.trace.append(text)
            if trips[trip]!.trace.count > 30 { trips[trip]!.trace.removeFirst() }
        }
    }

    private func trace(of trip: UUID?) -> [String] {
        guard let trip, let model = trips[trip] else { return recentLines }
        return model.trace
    }
}

/// Trip ids from the seed: the same run makes the same ids in the same order.
private final class IDSource: Sendable {
    private let random: Mutex<SimRandom>

    init(seed: UInt64) {
        random = Mutex(SimRandom(seed: seed ^ 0x5EED_1D5))
    }

    func next() -> UUID {
        random.withLock { random in
            let high = random.next()
            let low = random.next()
            return withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { bytes in
                UUID(uuid: bytes.load(as: uuid_t.self))
            }
        }
    }
}

/// The harness's step number, shared with the store wrapper (which reads it inside jobs).
private final class StepCounter: Sendable {
    private let step = Mutex(0)

    var value: Int {
        get { step.withLock { $0 } }
        set { step.withLock { $0 = newValue } }
    }
}

extension HubEvent {
    /// A trip's state (not a location).
    fileprivate var isTripState: Bool {
        if case .trip = self { return true }
        return false
    }
}
