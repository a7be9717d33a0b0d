import Foundation
@_spi(Simulation) import Hub

/// What happened in a step, taken in by the harness: operations' outcomes, what clients read,
/// the store's and the journal's writes. Order and duplicate checks of what clients read happen
/// here, and so do the checks that every answer and every trip state a client was handed was
/// durable at that moment (commit before acknowledge).
extension Simulation {
    /// Takes the outcomes of finished operations, what clients read and the store's writes.
    func absorb() throws {
        for entry in ledger.take() {
            pendingOperations -= 1
            try absorb(entry)
        }
        for index in clients.indices {
            guard let mailbox = clients[index].mailbox else { continue }
            try absorb(mailbox, client: index)
        }
        try absorbStoreRecords()
        absorbJournalRecords()
    }

    /// An answer must name a state that was durable when it was given.
    func checkAcknowledged(_ trip: Trip, by client: Int) throws {
        guard options.checksDurabilityOnDelivery else { return }
        invariantChecks += 1
        guard journal.isDurable(trip) else {
            throw Failure(message: "\(name(client)) was answered \(describe(trip)) before it was durable", trip: trip.id)
        }
    }

    func absorb(_ entry: Ledger.Entry) throws {
        guard let index = entry.client else {
            switch entry.outcome {
            case .flushed(let succeeded):
                flushInFlight = false
                log("snapshot \(succeeded ? "written" : "failed")")
            case .ticked:
                tickInFlight = false
            case .signedUp(let result):
                try absorbSignUp(result)
            default:
                break
            }
            return
        }
        clients[index].busy = false
        let who = name(index)
        switch entry.outcome {
        case .created(let view):
            ensure(view.trip.id)
            try checkAcknowledged(view.trip, by: index)
            trips[view.trip.id]!.acks.append((step, view.trip))
            clients[index].joined.insert(view.trip.id)
            log("\(who) got \(describe(view.trip))", trip: view.trip.id)
        case .updated(let view):
            let id = view.trip.id
            ensure(id)
            try checkAcknowledged(view.trip, by: index)
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
            try checkAcknowledged(view.trip, by: index)
            trips[view.trip.id]!.acks.append((step, view.trip))
            log("\(who) got \(describe(view.trip))", trip: view.trip.id)
        case .refused(let error):
            refusals[error.code.rawValue, default: 0] += 1
            log("\(who) refused: \(error.code.rawValue)")
        case .located(let receipt):
            if !receipt.isSettled { clients[index].unsettledFix = receipt }
        case .connected(let joined, let resumes):
            clients[index].joined.formUnion(joined)
            clients[index].connecting = false
            for resume in resumes { try absorb(resume, client: index) }
            log("\(who) joined \(joined.count) trips, resumed \(resumes.count)")
            // Owed events of a trip this connection could not resume (refused: the store could not
            // be read for a trip that left memory, say): nothing makes up for them. Not judged.
            let answered = Set(resumes.compactMap { resume -> UUID? in
                if case .success = resume.reply { return resume.tripID } else { return nil }
            })
            for (id, owed) in clients[index].owed.sorted(by: { $0.key < $1.key }) where !answered.contains(id) {
                unjudgedReplays += owed.count
                clients[index].owed[id] = nil
                log("\(who) did not resume \(name(id)): seq \(owed.keys.sorted()) owed to it left unjudged", trip: id)
            }
        case .disconnected:
            clients[index].disconnecting = false
            log("\(who) disconnected")
        case .availability(let online):
            log("\(who) is \(online ? "online" : "offline")")
        case .declined:
            log("\(who) declined")
        case .flushed, .actorStates, .signedUp, .ticked:
            break
        }
    }

    /// A sign-up's answer: an account, durable by then, and a new client who connects at once.
    func absorbSignUp(_ result: Result<User?, HubError>) throws {
        signUpsInFlight -= 1
        switch result {
        case .success(let user?):
            if options.checksDurabilityOnDelivery {
                invariantChecks += 1
                guard journal.isDurable(user) else {
                    throw Failure(message: "the sign-up of \(user.username) (id \(user.id)) was answered before the account was durable", trip: nil)
                }
            }
            userAcks.append((step, user))
            expectedUsers += 1
            clients.append(Client(principal: Principal(userID: user.id, group: user.group), position: nearCenter()))
            log("\(name(clients.count - 1)) signed up as \(user.username)")
            reconnect(clients.count - 1)
        case .success(nil):
            throw Failure(message: "a sign-up was refused: its username was taken, though every one is new", trip: nil)
        case .failure(let error):
            // Made in the directory, never durable: the hub is stopping.
            refusedAccounts += 1
            refusals[error.code.rawValue, default: 0] += 1
            log("a sign-up was refused: \(error.code.rawValue)")
        }
    }

    func absorb(_ resume: ResumeResult, client index: Int) throws {
        guard let mailbox = clients[index].mailbox, let number = connectionNumber(mailbox) else { return }
        let id = resume.tripID
        switch resume.reply {
        case .success(.replay(let events)):
            connections[number]?.streams[id, default: Stream()].lowerBound = resume.lastSeen
            connections[number]?.streams[id, default: Stream()].resumed = true
            replayedEvents += events.count
            log("\(name(index)) resumed \(name(id)) after \(resume.lastSeen): \(events.count) replayed", trip: id)
            try settleOwed(client: index, trip: id, connection: number)
        case .success(.currentState(let event)):
            connections[number]?.streams[id, default: Stream()].lowerBound = event.seq
            connections[number]?.streams[id, default: Stream()].currentState = event.seq
            connections[number]?.streams[id, default: Stream()].resumed = true
            log("\(name(index)) resumed \(name(id)) after \(resume.lastSeen): current state \(event.seq)", trip: id)
            try settleOwed(client: index, trip: id, connection: number)
        case .failure(let error):
            log("\(name(index)) resume of \(name(id)) refused: \(error.code.rawValue)", trip: id)
        }
    }

    func absorb(_ mailbox: SimMailbox, client index: Int) throws {
        guard let number = connectionNumber(mailbox) else { return }
        let (received, coalesced, early) = mailbox.take()
        defer {
            let readLive = received.contains { item in
                guard case .event(let event, .live) = item else { return false }
                let stream = connections[number]?.streams[event.tripID]
                return connections[number]?.resuming.contains(event.tripID) == true && stream?.replayed.isEmpty ?? true && stream?.resumeEnded != true
            }
            if options.slowsMidResume > 0, options.faults.contains(.slow), clients[index].connecting, readLive, !mailbox.isSlow,
                random.chance(options.slowsMidResume)
            {
                mailbox.setSlow(true)
                log("\(name(index)) stops reading while c\(number) resumes")
            }
        }
        if let trip = early.first {
            throw Failure(message: "c\(number) (\(name(index))) was handed \(describe(trip)) before it was durable", trip: trip.id)
        }
        for (trip, seq) in coalesced { connections[number]?.streams[trip, default: Stream()].coalesced.insert(seq) }
        for item in received {
            let event: HubEvent
            let arrival: SimMailbox.Arrival
            switch item {
            case .event(let received, let how):
                event = received
                arrival = how
            case .resumeEnded(let id, let through):
                try absorbResumeEnded(trip: id, through: through, connection: number, client: index)
                continue
            }
            if case .offerWithdrawn(let withdrawal) = event {
                // No event of the trip's own (its `seq` is the trip's at the time): outside the streams.
                try absorb(withdrawal, connection: number, client: index)
                continue
            }
            let id = event.tripID
            let seq = event.seq
            var stream = connections[number]?.streams[id] ?? Stream()
            invariantChecks += 1
            switch arrival {
            case .live:
                if let previous = stream.live.last, seq <= previous {
                    throw Failure(
                        message: "c\(number) (\(name(index))) got \(name(id)) seq \(seq) live after seq \(previous)", trip: id
                    )
                }
                stream.live.append(seq)
            case .replay:
                if stream.resumeEnded {
                    throw Failure(message: "c\(number) got a replay of \(name(id)) seq \(seq) after the end of its resume", trip: id)
                }
                if let previous = stream.replayed.last, seq <= previous {
                    throw Failure(message: "c\(number) got a replay of \(name(id)) out of order: \(seq) after \(previous)", trip: id)
                }
                if stream.live.contains(seq) {
                    throw Failure(message: "c\(number) got \(name(id)) seq \(seq) twice (live and replayed)", trip: id)
                }
                stream.replayed.append(seq)
            }
            connections[number]?.streams[id] = stream
            invariantChecks += 1
            // An offer is its trip's state under that state's `seq`, with terms for one driver.
            let named = event.tripState.map(HubEvent.trip) ?? event
            if let earlier = delivered[id]?[seq], earlier != named {
                throw Failure(
                    message: "c\(number) (\(name(index))) got \(name(id)) seq \(seq) as \(summary(event)); it was delivered before as \(summary(earlier))",
                    trip: id
                )
            }
            delivered[id, default: [:]][seq] = named
            clients[index].lastSeen[id] = max(clients[index].lastSeen[id] ?? 0, seq)
            clients[index].have[id, default: []].insert(seq)
            if let owed = clients[index].owed[id]?.removeValue(forKey: seq) {
                recoveredReplays += 1
                if clients[index].owed[id]!.isEmpty { clients[index].owed[id] = nil }
                log("c\(number) (\(name(index))) made up for \(name(id)) seq \(seq), lost with c\(owed.connection)", trip: id)
            }
            switch named {
            case .trip(let view):
                ensure(id)
                // Heard: it must survive every crash, as an answer must (a restored state stands
                // for the stored row it came from, whose `seq` is below the restart's).
                if let restored = restoredStates[id], restored.seq == view.trip.seq {
                    trips[id]!.heard.append((step, restored.stored))
                } else {
                    trips[id]!.heard.append((step, view.trip))
                }
                // A current state `resume` sends repeats a state change (or a restore); state
                // changes come from the index (`checkMove`).
                if view.trip.status == .requested, clients[index].principal.group == .driver, view.trip.driverID == nil {
                    clients[index].offers.removeAll { $0 == id }
                    clients[index].offers.append(id)
                } else {
                    clients[index].offers.removeAll { $0 == id }
                }
                log("c\(number) <- \(describe(view.trip))\(arrival == .replay ? " (replay)" : "")", trip: id)
            case .location(let location):
                ensure(id)
                invariantChecks += 1
                if arrival == .live, clients[index].sentFixes[FixKey(location.fix)] == number {
                    throw Failure(message: "c\(number) (\(name(index))) was sent back its own fix, \(name(id)) seq \(seq)", trip: id)
                }
                trips[id]!.seenLocations.append((step, seq))
                log("c\(number) <- \(name(id)) location \(seq)", trip: id, quiet: true)
            case .notice(let notice):
                ensure(id)
                log("c\(number) <- \(name(id)) \(summary(.notice(notice)))", trip: id)
            case .offer, .offerWithdrawn:
                // Offers were made `.trip` above; withdrawals never reach here.
                break
            }
        }
    }

    /// A driver's offer of a trip that still waited ended: it drops the trip from its offers.
    func absorb(_ withdrawal: OfferWithdrawal, connection number: UInt64, client index: Int) throws {
        ensure(withdrawal.tripID)
        clients[index].offers.removeAll { $0 == withdrawal.tripID }
        log("c\(number) <- \(name(withdrawal.tripID)) offer withdrawn (\(withdrawal.reason.rawValue))", trip: withdrawal.tripID)
    }

    /// The end mark of one trip's `resume` on a connection (`Mailbox.resumeEnded`): it comes once,
    /// after the replay; the client's resume point for the trip may move on (protocol §3.5), and
    /// what it was owed is judged (`settleOwed`).
    func absorbResumeEnded(trip id: UUID, through: Int64, connection number: UInt64, client index: Int) throws {
        ensure(id)
        var stream = connections[number]?.streams[id] ?? Stream()
        invariantChecks += 1
        if stream.resumeEnded {
            throw Failure(message: "c\(number) got the end of its resume of \(name(id)) twice", trip: id)
        }
        stream.resumeEnded = true
        connections[number]?.streams[id] = stream
        if !options.clientsIgnoreResumeEnd { clients[index].pendingResume[id] = nil }
        log("c\(number) <- \(name(id)) resume done through \(through)", trip: id)
        try settleOwed(client: index, trip: id, connection: number)
    }

    /// Completeness across reconnects (protocol §3.5). A connection that closes with replayed
    /// events still unread (queued behind live events with a higher `seq`: a slow client) leaves
    /// them owed to its client (`closeConnection`), unless it read them on an earlier connection.
    /// An owed event is paid by the client reading it on any later connection (replayed or live).
    /// Once a later connection's `resume` of the trip has ended (its mark read, the harness knowing
    /// the reply), nothing may still be owed: a replay from the pending point covers every owed
    /// `seq`, so all must have arrived; a current state (history that no longer reaches back, or a
    /// recovery's new history) stands for the owed locations and for the owed state changes at or
    /// below its `seq`, as within one connection (`closeConnection`). Anything else still owed
    /// fails the run: the client resumed past an event it never got. A client still owed events
    /// resumes the trip even when finished (`reconnect`), and at the end of a run connects once
    /// more (`checkEnd`). Not judged (counted): owed events of a trip whose next resume was
    /// refused, or whose reply a crash kept from the harness after the mark was read.
    func settleOwed(client index: Int, trip id: UUID, connection number: UInt64) throws {
        guard let stream = connections[number]?.streams[id], stream.resumed, stream.resumeEnded, !stream.settled else { return }
        connections[number]?.streams[id]?.settled = true
        guard let owed = clients[index].owed[id], !owed.isEmpty else { return }
        invariantChecks += 1
        var missing: [Int64] = []
        for (seq, entry) in owed.sorted(by: { $0.key < $1.key }) {
            if let state = stream.currentState, !entry.isStateChange || seq <= state {
                recoveredReplays += 1
                continue
            }
            missing.append(seq)
        }
        clients[index].owed[id] = nil
        if let state = stream.currentState, missing.isEmpty {
            log("c\(number) (\(name(index))): the current state \(state) of \(name(id)) stands for seq \(owed.keys.sorted()) owed", trip: id)
        }
        guard missing.isEmpty else {
            let lostWith = Set(missing.compactMap { owed[$0]?.connection }).sorted().map { "c\($0)" }.joined(separator: ", ")
            throw Failure(
                message: "c\(number) (\(name(index))) finished its resume of \(name(id)) from \(stream.lowerBound.map(String.init) ?? "?") without seq \(missing), replayed to \(lostWith) and lost unread when it closed: the client resumed past them",
                trip: id
            )
        }
    }

    func absorbStoreRecords() throws {
        for record in store.takeRecords() {
            if record.succeeded {
                writes += 1
                statusWrites += 1
                statusConsecutiveFailures = 0
                statusLastWriteCount = record.changes.count
                lastSuccessfulDrain = max(lastSuccessfulDrain, record.drainStep)
            } else {
                failedWrites += 1
                statusFailures += 1
                statusConsecutiveFailures += 1
            }
            log("store write of \(record.changes.count) (drained at step \(record.drainStep)): \(record.succeeded ? "ok" : record.committed ? "committed, reply lost" : "failed")")
        }
    }

    func absorbJournalRecords() {
        for record in journalWriter.takeRecords() {
            let outcome: String
            switch record.outcome {
            case .durable:
                journalWrites += 1
                outcome = "durable"
            case .failed:
                journalFailures += 1
                outcome = "FAILED for good"
            case .killed:
                outcome = "lost with the hub"
            }
            let stall = record.stalledSteps > 0 ? ", stalled \(record.stalledSteps) steps" : ""
            log("journal write of \(record.changes) (from step \(record.step)\(stall)): \(outcome)")
        }
    }

}

extension Simulation {
    /// An event in a trace line.
    func summary(_ event: HubEvent) -> String {
        switch event {
        case .trip(let view): "the state \(describe(view.trip))"
        case .location(let location): "a location (\(location.fix.point.lat), \(location.fix.point.lng))"
        case .offer(let view, let terms): "an offer of \(describe(view.trip)) (round \(terms.round))"
        case .offerWithdrawn(let withdrawal): "the withdrawal of its offer (\(withdrawal.reason.rawValue))"
        case .notice(let notice):
            switch notice.kind {
            case .searching(let round, _): "round \(round) of offers"
            case .arriving: "driver arriving"
            case .arrived: "driver arrived"
            }
        }
    }
}
