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
        case .located:
            break
        case .connected(let joined, let resumes):
            clients[index].joined.formUnion(joined)
            clients[index].connecting = false
            for resume in resumes { try absorb(resume, client: index) }
            log("\(who) joined \(joined.count) trips, resumed \(resumes.count)")
        case .disconnected:
            clients[index].disconnecting = false
            log("\(who) disconnected")
        case .flushed, .actorStates, .signedUp:
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
            replayedEvents += events.count
            log("\(name(index)) resumed \(name(id)) after \(resume.lastSeen): \(events.count) replayed", trip: id)
        case .success(.currentState(let event)):
            connections[number]?.streams[id, default: Stream()].lowerBound = event.seq
            connections[number]?.streams[id, default: Stream()].currentState = event.seq
            log("\(name(index)) resumed \(name(id)) after \(resume.lastSeen): current state \(event.seq)", trip: id)
        case .failure(let error):
            log("\(name(index)) resume of \(name(id)) refused: \(error.code.rawValue)", trip: id)
        }
    }

    func absorb(_ mailbox: SimMailbox, client index: Int) throws {
        guard let number = connectionNumber(mailbox) else { return }
        let (received, coalesced, early) = mailbox.take()
        if let trip = early.first {
            throw Failure(message: "c\(number) (\(name(index))) was handed \(describe(trip)) before it was durable", trip: trip.id)
        }
        for (trip, seq) in coalesced { connections[number]?.streams[trip, default: Stream()].coalesced.insert(seq) }
        for item in received {
            let event = item.event
            let id = event.tripID
            let seq = event.seq
            var stream = connections[number]?.streams[id] ?? Stream()
            invariantChecks += 1
            switch item.arrival {
            case .live:
                if let previous = stream.live.last, seq <= previous {
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
            invariantChecks += 1
            if let earlier = delivered[id]?[seq], earlier != event {
                throw Failure(
                    message: "c\(number) (\(name(index))) got \(name(id)) seq \(seq) as \(summary(event)); it was delivered before as \(summary(earlier))",
                    trip: id
                )
            }
            delivered[id, default: [:]][seq] = event
            clients[index].lastSeen[id] = max(clients[index].lastSeen[id] ?? 0, seq)
            switch event {
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
                log("c\(number) <- \(describe(view.trip))\(item.arrival == .replay ? " (replay)" : "")", trip: id)
            case .location:
                ensure(id)
                trips[id]!.seenLocations.append((step, seq))
                log("c\(number) <- \(name(id)) location \(seq)", trip: id, quiet: true)
            }
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
        }
    }
}
