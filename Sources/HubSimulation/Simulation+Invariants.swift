import Foundation
@_spi(Simulation) import Hub

import Persistence

/// The simulator's invariants (docs/simulation.md), checked after every step, when a connection ends, around each
/// crash and at the end of a run.
extension Simulation {
    /// After every step: trips move forward with one winner, the driver map agrees with the
    /// trips, and the snapshot counters agree with the writes the store saw.
    func checkStep() throws {
        guard scheduler.foreignEnqueues == 0 else {
            throw Failure(message: "a job was enqueued from another thread: this run's schedule was not the seed's alone", trip: nil)
        }
        // The actors' latest states (durable or not); reads see the released ones (counted below).
        let live = hub.index.latestTrips().sorted { $0.id < $1.id }
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
        try checkOffers(live)
        invariantChecks += 1
        var counted: [TripStatus: Int] = [:]
        for trip in hub.index.allTrips() {
            counted[trip.status, default: 0] += 1
            // What REST and the operators read is never ahead of what is durable.
            invariantChecks += 1
            if options.checksDurabilityOnDelivery, !journal.isDurable(trip) {
                throw Failure(message: "the index shows \(describe(trip)) to readers before it is durable", trip: trip.id)
            }
        }
        let reported = hub.index.countsByStatus()
        guard reported == counted else {
            throw Failure(message: "the index counts trips by status as \(reported); its trips say \(counted)", trip: nil)
        }
        try checkCounters()
    }

    /// The hub's and the snapshot service's counters that /metrics shows (`HubMetrics`) equal what
    /// the harness counted itself: snapshot writes and failures (all, in a row, the last one's
    /// size), accounts, connected drivers. (Trips by status are checked against the index above;
    /// changes pending have no count of the harness's own, only the end check that none is left.)
    func checkCounters() throws {
        invariantChecks += 1
        let snapshots = status.current
        guard snapshots.totalWrites == statusWrites, snapshots.totalFailures == statusFailures,
            snapshots.consecutiveFailures == statusConsecutiveFailures, snapshots.lastWriteCount == statusLastWriteCount
        else {
            throw Failure(
                message: "snapshot status counts \(snapshots.totalWrites) writes, \(snapshots.totalFailures) failures (\(snapshots.consecutiveFailures) in a row), the last of \(snapshots.lastWriteCount); the store saw \(statusWrites), \(statusFailures) (\(statusConsecutiveFailures)), \(statusLastWriteCount)",
                trip: nil
            )
        }
        invariantChecks += 1
        // A sign-up's account is in the directory from its `create` on, before it is durable.
        let accounts = expectedUsers + refusedAccounts
        guard (accounts...accounts + signUpsInFlight).contains(hub.users.count) else {
            throw Failure(
                message: "the user directory counts \(hub.users.count) accounts; the harness made \(accounts), and \(signUpsInFlight) sign-ups are under way",
                trip: nil
            )
        }
        invariantChecks += 1
        let drivers = clients.filter { $0.principal.group == .driver }
        let surely = drivers.filter { $0.mailbox != nil && !$0.connecting }.count
        let atMost = drivers.filter { $0.mailbox != nil || $0.disconnecting }.count
        guard (surely...max(surely, atMost)).contains(hub.drivers.count) else {
            throw Failure(
                message: "the driver map counts \(hub.drivers.count) drivers online; \(surely) are connected, \(atMost) at most", trip: nil
            )
        }
    }

    /// After the journal's replay at a crash: every account whose sign-up was answered is in the
    /// store as it was made, however recent (a sign-up that was never answered may be lost, or
    /// not). The stored accounts are durable from now on.
    func checkUsers(stored: [User]) throws {
        let byID = Dictionary(uniqueKeysWithValues: stored.map { ($0.id, $0) })
        for (step, user) in userAcks {
            invariantChecks += 1
            guard byID[user.id] == user else {
                let found = byID[user.id].map { "\($0.username) under its id" } ?? "nothing under its id"
                throw Failure(
                    message: "lost the account of \(user.username) (id \(user.id)), acknowledged at step \(step); the store has \(found)", trip: nil
                )
            }
        }
        for user in stored { journal.markRestored(user) }
        expectedUsers = stored.count
    }

    func checkMove(of trip: Trip) throws {
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

    /// Offers (docs/protocol.md §3.3): none outlives its trip's wait (taken, canceled, no driver
    /// found), none is made to a driver that is busy, offline or (for a trip with a pick-up point)
    /// stale, and no request waits longer than its `dispatchTimeout` (and a tick).
    func checkOffers(_ live: [Trip]) throws {
        let waiting = Dictionary(uniqueKeysWithValues: live.filter { $0.status == .requested }.map { ($0.id, $0) })
        let offers = hub.drivers.offeredTrips()
        let now = clock.now()
        for (connection, trips) in offers.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            for trip in trips.sorted() {
                invariantChecks += 1
                guard let request = waiting[trip] else {
                    let state = live.first { $0.id == trip }.map(describe) ?? "gone"
                    throw Failure(message: "connection \(connection.rawValue) still holds an offer of \(name(trip)), which is \(state)", trip: trip)
                }
                guard heldOffers[connection]?.contains(trip) != true else { continue }
                invariantChecks += 1
                guard hub.drivers.isAvailable(connection, needsPosition: request.pickUpLocation != nil, now: now) else {
                    throw Failure(message: "connection \(connection.rawValue) was offered \(name(trip)) while busy, offline or stale", trip: trip)
                }
            }
        }
        heldOffers = offers
        for trip in waiting.values.sorted(by: { $0.id < $1.id }) {
            invariantChecks += 1
            let timeout = trip.created.microseconds + Self.offers.dispatchTimeout.components.seconds * 1_000_000
            let deadline = max(timeout, recoveredAt.microseconds) + Self.endSlack
            // A hub that stops (its journal failed) runs no more ticks; its successor ends the trip.
            guard now.microseconds <= deadline || exitCountdown != nil else {
                throw Failure(message: "\(describe(trip)) still waits for a driver past its dispatchTimeout", trip: trip.id)
            }
        }
    }

    func checkDriverMap(_ live: [Trip]) throws {
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
    /// A trip's `seq`s grow by one, but for the jump at a recovery (`Hub.restore`); a connection
    /// never outlives a crash, so what it got of a trip lies after the jump and is dense.
    func closeConnection(_ mailbox: SimMailbox) throws {
        guard let number = connectionNumber(mailbox), let connection = connections[number] else { return }
        try absorb(mailbox, client: connection.client)
        let unread = mailbox.close()
        connections[number] = nil
        let isRider = clients[connection.client].principal.group == .rider
        // A resume whose mark was read but whose reply the harness never learnt (a crash closed the
        // connection while it still resumed): the client moved its resume point on, and whether a
        // current state stood for what it was owed is unknown. Not judged.
        for (id, stream) in connection.streams.sorted(by: { $0.key < $1.key }) where stream.resumeEnded && !stream.resumed {
            guard let owed = clients[connection.client].owed[id] else { continue }
            unjudgedReplays += owed.count
            clients[connection.client].owed[id] = nil
            log("c\(number) (\(name(connection.client))) closed with its reply to the resume of \(name(id)) unknown: seq \(owed.keys.sorted()) owed left unjudged", trip: id)
        }
        // Every `resume` answered on this connection ended with its mark, read or still queued.
        for (id, stream) in connection.streams.sorted(by: { $0.key < $1.key }) where stream.resumed && !stream.resumeEnded {
            invariantChecks += 1
            let queued = unread.contains { item in
                if case .resumeEnded(let trip, _) = item { return trip == id }
                return false
            }
            guard queued else {
                throw Failure(message: "c\(number) (\(name(connection.client))) resumed \(name(id)) but never got the end of that resume", trip: id)
            }
        }
        for (id, stream) in connection.streams.sorted(by: { $0.key < $1.key }) {
            let received = Set(stream.live + stream.replayed)
            guard let top = received.max(), let first = stream.lowerBound.map({ $0 + 1 }) ?? received.min(), first <= top
            else { continue }
            invariantChecks += 1
            guard top - first < 1_000_000 else {
                throw Failure(message: "c\(number) (\(name(connection.client))) got \(name(id)) seqs from \(first) to \(top): a jump within one connection", trip: id)
            }
            let changes = trips[id]?.stateChanges ?? []
            // After a current state, the events up to the join (before the first live one) are not this
            // connection's: the state stands for them. When the connection closes while it still
            // resumes (a crash), the harness has not learnt its replies yet: a replayed event may be
            // such a state, so the same holds.
            let unknownReplies = clients[connection.client].connecting && stream.lowerBound == nil && !stream.replayed.isEmpty
            let eventsFrom = stream.currentState == nil && !unknownReplies ? first : (stream.live.min() ?? top + 1)
            let missed = (first...top).filter { seq in
                !received.contains(seq)
                    && (changes.contains(seq) || (isRider && seq >= eventsFrom && !stream.coalesced.contains(seq)))
            }
            guard !missed.isEmpty else { continue }
            // Replayed events queue behind live ones with a higher `seq` (protocol §3.5). When the
            // connection drops in between, the client has read the higher `seq`, but not the end
            // of the resume: its next connection resumes from where this one did, and must make
            // up for them (`settleOwed`). Owed to the client, not failed here.
            let unreadReplays = Set(unread.compactMap { item -> Int64? in
                if case .event(let event, .replay) = item, event.tripID == id { return event.seq }
                return nil
            })
            if missed.allSatisfy(unreadReplays.contains) {
                let client = connection.client
                let owed = missed.filter { !(clients[client].have[id]?.contains($0) ?? false) }
                for seq in owed {
                    clients[client].owed[id, default: [:]][seq] = Owed(connection: number, isStateChange: changes.contains(seq))
                }
                log("c\(number) (\(name(client))) closed before reading the replay of \(name(id)) seq \(missed); owed: \(owed)", trip: id)
                continue
            }
            throw Failure(
                message: "c\(number) (\(name(connection.client))) missed \(name(id)) seq \(missed) between \(first) and \(top)", trip: id
            )
        }
    }

    /// At a recovery, once the journal is replayed into the store: no acknowledged trip change is
    /// lost, ever. Every state a client was answered (create, update, cancel) or handed as an
    /// event (live, replayed or as a current state) is in the store, or a later one (same or
    /// later status, `seq` not below); so is the newest journaled state of every trip the replay
    /// read. Locations are not journaled: only those a client saw before the last successful
    /// snapshot's drain must be in the store's track.
    func checkNothingLost(replayed: [DurableChange]) throws {
        let real = realStore!
        var journaled: [UUID: Trip] = [:]
        for case .trip(let trip) in replayed { journaled[trip.id] = trip }
        for (id, model) in trips.sorted(by: { $0.value.number < $1.value.number }) {
            var required = model.acks.map { (step: $0.step, trip: $0.trip, how: "acknowledged") }
            required += model.heard.map { (step: $0.step, trip: $0.trip, how: "heard") }
            if let trip = journaled[id] { required.append((step: step, trip: trip, how: "journaled")) }
            if !required.isEmpty {
                invariantChecks += 1
                let stored = try BlockingBridge.run { try await real.trip(id: id) }
                for (when, trip, how) in required {
                    invariantChecks += 1
                    guard let stored, stored.status >= trip.status, stored.seq >= trip.seq else {
                        throw Failure(
                            message: "lost \(describe(trip)), \(how) at step \(when); after the journal's replay the store has \(stored.map(describe) ?? "nothing")",
                            trip: id
                        )
                    }
                }
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

    /// After a recovery: the hub's trips are the store's unfinished ones, their `seq` going on
    /// from the largest of the stored one, their track's and the clock in microseconds (see
    /// `Hub.restore`), and the harness takes them as its new baseline.
    func checkRecovered(_ stored: [Trip], tracks: [UUID: [TrackPoint]]) throws {
        let live = hub.index.allTrips().sorted { $0.id < $1.id }
        invariantChecks += 1
        let storedSeqs = Dictionary(uniqueKeysWithValues: stored.map { ($0.id, max($0.seq, tracks[$0.id]?.last?.seq ?? 0)) })
        let expected = stored.map { trip -> Trip in
            var trip = trip
            trip.seq = max(storedSeqs[trip.id]!, clock.now().microseconds)
            return trip
        }.sorted { $0.id < $1.id }
        guard live == expected else {
            let differing = zip(live, expected).first { $0 != $1 }.map { "\(describe($0.0)) vs stored \(describe($0.1))" } ?? ""
            throw Failure(
                message: "after recovery the hub has \(live.count) trips, the store \(expected.count) unfinished \(differing)",
                trip: nil
            )
        }
        for trip in expected {
            invariantChecks += 1
            guard hub.tripActor(id: trip.id) != nil else {
                throw Failure(message: "\(name(trip.id)) has no actor after recovery", trip: trip.id)
            }
        }
        // The new hub starts a new history: every state acknowledged or heard before is in the
        // store (checked above); locations after the last snapshot may be lost by the rules, and
        // the `seq`s of those the hub forgot may be used again.
        restoredStates = [:]
        for (id, _) in trips {
            trips[id]!.last = nil
            trips[id]!.winners = []
            trips[id]!.acks = []
            trips[id]!.heard = []
            trips[id]!.seenLocations = []
            trips[id]!.stateChanges = []
        }
        for trip in expected {
            for index in clients.indices {
                let seen = clients[index].lastSeen[trip.id] ?? 0
                // Clients that saw changes lost in the crash, beyond the stored `seq`.
                if seen > storedSeqs[trip.id]! { staleResumes += 1 }
                invariantChecks += 1
                // The hub must number the trip's next events above every `seq` a client saw.
                guard seen < trip.seq else {
                    throw Failure(
                        message: "\(name(index)) saw \(name(trip.id)) seq \(seen); the recovered trip goes on from \(trip.seq)", trip: trip.id
                    )
                }
            }
        }
        let storedByID = Dictionary(uniqueKeysWithValues: stored.map { ($0.id, $0) })
        for trip in live {
            ensure(trip.id)
            trips[trip.id]!.last = trip
            if let driver = trip.driverID { trips[trip.id]!.winners = [driver] }
            // Loaded from the store: durable, under the `seq` the hub goes on from.
            journal.markRestored(trip)
            restoredStates[trip.id] = (trip.seq, storedByID[trip.id]!)
            log("recovered \(describe(trip))", trip: trip.id)
        }
    }

    /// At the end, at rest: the actors agree with the index, the driver map counts the connected
    /// drivers, every connection got what it should have, and the store, written one last time,
    /// equals the hub.
    func checkEnd() throws {
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
        // Every client still owed events (lost unread with a connection that closed, here or
        // before) connects once more and resumes, as a client would come back (its closed
        // connection leaves the hub first, so the driver map's count stays checkable); at rest
        // again, it reads all and closes: what it was owed is judged (`settleOwed`).
        let owing = clients.indices.filter { !clients[$0].owed.isEmpty }
        if !owing.isEmpty {
            for index in owing where clients[index].mailbox != nil { try disconnect(index) }
            try drain()
            for index in owing { reconnect(index) }
            try drain()
            for index in owing {
                guard let mailbox = clients[index].mailbox else { continue }
                mailbox.setSlow(false)
                try closeConnection(mailbox)
                clients[index].mailbox = nil
            }
        }
        for index in clients.indices {
            // Owed on a trip whose last resume was refused: nothing made up for it.
            for (id, owed) in clients[index].owed.sorted(by: { $0.key < $1.key }) {
                unjudgedReplays += owed.count
                log("\(name(index)): \(name(id)) seq \(owed.keys.sorted()) still owed at the end, not judged", trip: id)
            }
        }
        startFlush()
        while flushInFlight, scheduler.runOne(choice: random.index(1 << 30)) != nil { try absorb() }
        try absorbStoreRecords()
        invariantChecks += 1
        let real = realStore!
        let stored = try BlockingBridge.run { try await real.loadUnfinishedTrips() }.sorted { $0.id < $1.id }
        let unfinished = hub.index.allTrips().filter { !$0.status.isFinished }.sorted { $0.id < $1.id }
        // A restored trip's `seq` in the index goes on from its track (see `Hub.restore`), the
        // stored row's from its last state change: equal but for that, and never ahead of the hub.
        func withoutSeq(_ trips: [Trip]) -> [Trip] { trips.map { var trip = $0; trip.seq = 0; return trip } }
        guard withoutSeq(stored) == withoutSeq(unfinished), zip(stored, unfinished).allSatisfy({ $0.seq <= $1.seq }) else {
            let differing = zip(stored, unfinished).first { $0 != $1 }.map { "\(describe($0.0)) vs hub \(describe($0.1))" } ?? ""
            throw Failure(
                message: "after the final snapshot the store has \(stored.count) unfinished trips, the hub \(unfinished.count) \(differing)",
                trip: nil
            )
        }
        invariantChecks += 1
        guard hub.changes.pendingCount == 0 else {
            throw Failure(message: "\(hub.changes.pendingCount) changes still pending after the final snapshot", trip: nil)
        }
        invariantChecks += 1
        guard commitLog.pendingCount == 0, journalWriter.logFailure == nil else {
            throw Failure(
                message: "at rest, the commit log has \(commitLog.pendingCount) changes not durable\(journalWriter.logFailure.map { " and failed: \($0)" } ?? "")",
                trip: nil
            )
        }
    }

}
