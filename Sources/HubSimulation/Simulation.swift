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
        /// Its connect (or disconnect) operation has started and not ended: the driver map may or
        /// may not count it yet.
        var connecting = false
        var disconnecting = false
        /// Protocol §3.5: per trip, where its last `resume` started, until that resume's end mark
        /// (`resumeEnded`) is read; the next connection resumes from here rather than from
        /// `lastSeen`. Set for every trip it resumes, as the web client sends all it knows.
        var pendingResume: [UUID: Int64] = [:]
        /// Every `seq` of each trip the client read, over all its connections.
        var have: [UUID: Set<Int64>] = [:]
        /// Per trip, events a connection of this client was owed and never read (replays queued
        /// when it closed), by `seq`: a later connection must make up for them (`settleOwed`).
        var owed: [UUID: [Int64: Owed]] = [:]
        /// The last fix this client sent that its trip may not have recorded yet: settled before
        /// its next request, as the server's `ClientSession` does.
        var unsettledFix: FixReceipt?
        /// The connection each of its fixes went out on (by the fix's time and place): a fix is
        /// never sent back to the connection that sent it.
        var sentFixes: [FixKey: UInt64] = [:]
    }

    /// A fix told apart from a driver's others by its time and place.
    struct FixKey: Hashable {
        let microseconds: Int64
        let lat: Double
        let lng: Double

        init(_ fix: LocationFix) {
            microseconds = fix.timestamp.microseconds
            lat = fix.point.lat
            lng = fix.point.lng
        }
    }

    /// An event a closed connection was owed and did not read.
    struct Owed {
        /// The connection it was lost with.
        let connection: UInt64
        /// A state change (else a location, owed to riders only).
        let isStateChange: Bool
    }

    /// What one connection received of one trip.
    struct Stream {
        var live: [Int64] = []
        var replayed: [Int64] = []
        var coalesced: Set<Int64> = []
        /// Events after this `seq` must all arrive (from `resume`); nil: from the first one received.
        var lowerBound: Int64?
        /// The `seq` of a current state `resume` sent instead of a replay: events between it and
        /// the join are not the connection's to get, state changes after it are.
        var currentState: Int64?
        /// This connection's `resume` of the trip was answered (and the harness knows the reply).
        var resumed = false
        /// Its end mark (`resumeEnded`) was read; `settled`: the owed events were then judged.
        var resumeEnded = false
        var settled = false
    }

    struct Connection {
        let client: Int
        var streams: [UUID: Stream] = [:]
        /// The trips it resumes if it joins them (those its client saw before).
        var resuming: Set<UUID> = []
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
        /// States a client was handed as events (live, replayed, current states), with the step
        /// the harness read them; a restored state stands for the stored row it came from.
        var heard: [(step: Int, trip: Trip)] = []
        /// Locations some client saw, with the step it saw them.
        var seenLocations: [(step: Int, seq: Int64)] = []
        var trace: [String] = []
    }

    struct Failure: Error {
        let message: String
        let trip: UUID?
    }

    static let center = GeoPoint(lat: 52.52, lng: 13.405)

    /// Offer rounds in simulated time: a run of 1,000 steps lasts about ten seconds, so offers
    /// expire, rounds widen, positions go stale and requests end without a driver within it.
    static let offers = OfferPolicy(
        radiusStep: 400, offerTimeout: .seconds(1), dispatchTimeout: .seconds(4), stalePositionAfter: .seconds(3)
    )
    /// How often the harness runs a dispatch tick, as the server's `DispatchService` does.
    static let tickInterval: Int64 = 500_000
    /// How late a request may end after its `dispatchTimeout` (or after the recovery that restored
    /// it past that): the tick's interval plus the steps its job may wait for the trip's lane (many
    /// lanes are ready after a recovery, when every client reconnects and resumes).
    static let endSlack: Int64 = 3_000_000

    let seed: UInt64
    let options: SimulationOptions
    var random: SimRandom
    let scheduler = SimScheduler()
    let clock = SimClock()
    var ledger = Ledger()
    /// The run's real store (SQLite, or PostgreSQL when the options name a server).
    var database: SimDatabase?
    var realStore: (any SnapshotStore)!
    var store: SimStore!
    var storeFaults = SimStore.Faults()
    /// The write-ahead journal's disk: the harness's, so it survives every crash.
    let journal = SimJournal()
    /// The current hub's way to it (a new one per hub), and its commit log.
    var journalWriter: SimJournalWriter!
    var journalFaults = SimJournalWriter.Faults()
    var commitLog: GroupCommitLog!
    /// Steps left before a hub whose commit log failed stops (as `ProcessExit.soon` gives the
    /// queued error replies a moment); nil while the log is well.
    var exitCountdown: Int?
    var journalWrites = 0
    var journalFailures = 0
    var journalReplayed = 0
    var hub: Hub!
    var service: SnapshotService!
    var status: SnapshotStatus!

    var step = 0
    /// `step`, for the store wrapper (which runs inside jobs).
    let stepCounter = StepCounter()
    let ids: IDSource
    var invariantChecks = 0
    var operations = 0
    var connectionNumbers: UInt64 = 0
    var clients: [Client] = []
    var connections: [UInt64: Connection] = [:]
    var trips: [UUID: TripModel] = [:]
    var flushInFlight = false
    /// A dispatch tick runs (the server's `DispatchService`), and when the last one started.
    var tickInFlight = false
    var lastTick = Timestamp(microseconds: 0)
    /// When the current hub was built from the store (its restored trips tick from then on).
    var recoveredAt = Timestamp(microseconds: 0)
    /// Each driver connection's offers after the last step (`DriverMap.offeredTrips`): an offer
    /// new in a step was made in that step's one job, so its driver was available then as now.
    var heldOffers: [ConnectionID: Set<UUID>] = [:]
    var pendingOperations = 0
    var lastSuccessfulDrain = 0
    var writes = 0
    var failedWrites = 0
    var crashes = 0
    var staleResumes = 0
    /// Accounts acknowledged (`signUp` answered) and the step they were, for the crash check; and
    /// how many the current hub's directory should hold (`taxihub_users` in /metrics): the
    /// acknowledged and stored ones, those refused after `create` (the log failed), and up to
    /// `signUpsInFlight` more.
    var userAcks: [(step: Int, user: User)] = []
    var expectedUsers = 0
    var signUps = 0
    var signUpsInFlight = 0
    var refusedAccounts = 0
    /// Trips a recovery restored: the `seq` the hub goes on from, and the stored row it stands for.
    var restoredStates: [UUID: (seq: Int64, stored: Trip)] = [:]
    /// What the current hub's `SnapshotStatus` should report of the writes the store saw.
    var statusConsecutiveFailures = 0
    var statusLastWriteCount = 0
    /// Every event delivered to any client, by trip and `seq`, over the whole run (crashes
    /// included): a `seq` must never name two different events.
    var delivered: [UUID: [Int64: HubEvent]] = [:]
    /// Requests the hub refused, by error code (a lost accept race is `trip_taken`).
    var refusals: [String: Int] = [:]
    var replayedEvents = 0
    var recoveredReplays = 0
    var unjudgedReplays = 0
    var digest: UInt64 = 0xCBF2_9CE4_8422_2325
    var recentLines: [String] = []
    /// Writes and failures the current hub's `SnapshotStatus` should count.
    var statusWrites = 0
    var statusFailures = 0

    init(seed: UInt64, options: SimulationOptions) {
        self.seed = seed
        self.options = options
        self.random = SimRandom(seed: seed)
        self.ids = IDSource(seed: seed)
    }

    /// Runs the workload, drains it, checks the end state and removes the run's files.
    func run() -> SimulationResult {
        scheduler.bindToCurrentThread()
        defer { database?.remove() }
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
            writes: writes, failedWrites: failedWrites, journalWrites: journalWrites, journalFailures: journalFailures,
            journalReplayed: journalReplayed, staleResumes: staleResumes, refusals: refusals,
            replayedEvents: replayedEvents, recoveredReplays: recoveredReplays, unjudgedReplays: unjudgedReplays,
            digest: digest, failure: failure
        )
    }

    // MARK: Set-up and the hub's life

    func setUp() throws {
        database = try SimDatabase.make(seed: seed, options: options)
        realStore = database!.store
        let real = realStore!
        try BlockingBridge.run { try await real.migrate() }
        if options.faults.contains(.store) {
            storeFaults.failBefore = 0.15
            storeFaults.failAfter = 0.05
            storeFaults.stall = 0.2
            journalFaults.stall = 0.1
            journalFaults.failForGood = 0.002
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
            userAcks.append((-1, user))
            journal.markRestored(user)
        }
        expectedUsers = clients.count
        // The accounts exist before the workload starts, as sign-ups long before it would.
        let users = hub.changes.drain()
        try BlockingBridge.run { try await real.write(users) }
        log("set-up: \(riders) riders, \(drivers) drivers")
        for index in clients.indices { reconnect(index) }
    }

    /// A new hub with its own snapshot service, store wrapper and ledger (the old ones, if any,
    /// belong to a crashed hub).
    func buildHub() {
        store = SimStore(base: realStore, scheduler: scheduler, faults: storeFaults, seed: random.next()) { [stepCounter] in
            stepCounter.value
        }
        ledger = Ledger()
        journalWriter = SimJournalWriter(journal: journal, scheduler: scheduler, faults: journalFaults, seed: random.next()) {
            [stepCounter] in stepCounter.value
        }
        exitCountdown = nil
        let writer = journalWriter!
        let scheduler = self.scheduler
        // The product's group commit over the journal, its writer task on a lane of its own.
        commitLog = GroupCommitLog(
            write: { batch in try await writer.write(batch) },
            onFailure: { error in writer.logFailed(error) },
            spawn: { work in Task(executorPreference: scheduler.makeTaskExecutor()) { await work() } }
        )
        let log: any CommitLog =
            switch options.plantedCommitBug {
            case .acknowledgesEarly: EarlyAcknowledgingLog(base: commitLog)
            case nil: commitLog
            }
        var settings = Hub.Settings()
        settings.plantedBug = options.plantedBug
        settings.historyLength = 64
        settings.offers = Self.offers
        settings.dispatch = DispatchPolicy(initialRadius: 200, maxRadius: 1_000, driverCount: 2)
        let ids = self.ids
        hub = Hub(
            commitLog: log, settings: settings, executors: SimTripExecutors(scheduler: scheduler), clock: clock,
            newTripID: { ids.next() }
        )
        status = SnapshotStatus(started: clock.now())
        statusWrites = 0
        statusFailures = 0
        statusConsecutiveFailures = 0
        statusLastWriteCount = 0
        let hub = self.hub!
        service = SnapshotService(
            store: store, tracker: hub.changes, interval: .seconds(1), status: status,
            logger: Logger(label: "simulation", factory: { _ in SwiftLogNoOpLogHandler() })
        ) { persisted in
            hub.evictPersisted(persisted.trips.values)
        }
    }

    /// Throws the hub away mid-flight, recovers as the product starts (the journal's changes the
    /// store lacks go into the store, then the hub loads from it), checks that the store kept
    /// what the rules promise, and starts a new hub from it.
    ///
    /// The crashed hub's store wrapper and journal writer refuse everything from the crash on and
    /// its connections close, so nothing it still does reaches the store, the journal or a client;
    /// its queued jobs and sleeping writes are then run to their end (in a fixed order), only so
    /// that their tasks end and free the dead hub instead of leaking it.
    func crashAndRecover(_ why: String = "") throws {
        crashes += 1
        log("CRASH #\(crashes)\(why.isEmpty ? "" : ": " + why)")
        store.kill()
        journalWriter.kill()
        for index in clients.indices {
            if let mailbox = clients[index].mailbox { try closeConnection(mailbox) }
            clients[index].mailbox = nil
            clients[index].busy = false
            clients[index].joined = []
            clients[index].offers = []
            clients[index].connecting = false
            clients[index].disconnecting = false
        }
        try absorbStoreRecords()
        absorbJournalRecords()
        repeat {
            scheduler.wakeAllSleepers()
        } while scheduler.runOne(choice: 0) != nil
        flushInFlight = false
        tickInFlight = false
        heldOffers = [:]
        pendingOperations = 0
        signUpsInFlight = 0
        refusedAccounts = 0
        let real = realStore!
        // As `HubStartup` does (migrate, `JournalRecovery.recover`, load): what the journal holds
        // goes into the store first, and its segments are deleted.
        let replayed = journal.takeForReplay()
        if !replayed.isEmpty {
            let outcome = try BlockingBridge.run { try await JournalRecovery.merge(replayed, into: real) }
            journalReplayed += replayed.count
            log("journal replayed: \(replayed.count) records; wrote \(outcome.trips) trips, \(outcome.users) users; \(outcome.skipped) stored already")
        }
        // A restart takes time; the recovered trips' `seq`s go on from the clock (`Hub.restore`),
        // which must then be past every `seq` the crashed hub issued (at most one per step).
        clock.advance(byMicroseconds: 500_000)
        buildHub()
        recoveredAt = clock.now()
        // As the server starts: the store rebuilds the hub (`SnapshotStore.restore(into:)`).
        let stored = try BlockingBridge.run { [hub = hub!] in try await real.restore(into: hub) }
        try checkNothingLost(replayed: replayed)
        try checkUsers(stored: stored.users)
        try checkRecovered(stored.trips, tracks: stored.tracks)
        for index in clients.indices { reconnect(index) }
    }

    /// Runs what is still in flight to its end, without new operations or faults.
    func drain() throws {
        store.faultsEnabled = false
        journalWriter.faultsEnabled = false
        // For a hub that a failed journal makes restart meanwhile, too.
        storeFaults = SimStore.Faults()
        journalFaults = SimJournalWriter.Faults()
        var idleRounds = 0
        while idleRounds < 50 {
            if scheduler.readyCount == 0 && pendingOperations == 0 && !flushInFlight && exitCountdown == nil { break }
            let before = scheduler.jobsRun
            try advance(workload: false)
            idleRounds = scheduler.jobsRun == before ? idleRounds + 1 : 0
        }
        guard scheduler.readyCount == 0, pendingOperations == 0, !flushInFlight, exitCountdown == nil else {
            throw Failure(message: "the run did not come to rest: \(pendingOperations) operations still pending", trip: nil)
        }
    }

    // MARK: Helpers

    /// The harness's model of a trip, made on first sight (numbered in order of first sight).
    func model(_ id: UUID) -> TripModel {
        ensure(id)
        return trips[id]!
    }

    func ensure(_ id: UUID) {
        if trips[id] == nil { trips[id] = TripModel(number: trips.count + 1) }
    }

    func connectionNumber(_ mailbox: SimMailbox) -> UInt64? {
        let number = mailbox.connectionID.rawValue
        return connections[number] == nil ? nil : number
    }

    func nearCenter() -> GeoPoint {
        GeoPoint(
            lat: Self.center.lat + Double(random.index(2001) - 1000) * 1e-5,
            lng: Self.center.lng + Double(random.index(2001) - 1000) * 1e-5
        )
    }

    func name(_ client: Int) -> String {
        let principal = clients[client].principal
        return "\(principal.group == .rider ? "rider" : "driver") \(principal.userID)"
    }

    func name(_ trip: UUID) -> String {
        "T\(model(trip).number)"
    }

    func describe(_ trip: Trip) -> String {
        "\(name(trip.id)) \(trip.status.rawValue) seq \(trip.seq) driver \(trip.driverID.map(String.init) ?? "-")"
    }

    /// Adds a line to the trace (and the digest); `quiet` lines count in the digest only.
    func log(_ line: String, trip: UUID? = nil, quiet: Bool = false) {
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

    func trace(of trip: UUID?) -> [String] {
        guard let trip, let model = trips[trip] else { return recentLines }
        return model.trace
    }
}

/// The harness's step number, shared with the store wrapper (which reads it inside jobs).
final class StepCounter: Sendable {
    let step = Mutex(0)

    var value: Int {
        get { step.withLock { $0 } }
        set { step.withLock { $0 = newValue } }
    }
}
