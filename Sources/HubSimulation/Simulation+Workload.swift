import Foundation
@_spi(Simulation) import Hub

/// The workload: each step either runs one job or starts one client operation, chosen by the seed.
extension Simulation {
    /// One step: the clock moves, due sleepers wake, then either a client starts an operation or
    /// one job runs, chosen by the seed; then every invariant is checked.
    func advance(workload: Bool) throws {
        step += 1
        stepCounter.value = step
        clock.advance(byMicroseconds: Int64(random.index(20_000)))
        scheduler.wakeSleepers(at: step)
        if !tickInFlight, clock.now().microseconds - lastTick.microseconds >= Self.tickInterval {
            startTick()
        }
        if workload && (scheduler.readyCount == 0 || random.chance(0.3)) {
            try startOperation()
        } else if let lane = scheduler.runOne(choice: random.index(1 << 30)) {
            log("run lane \(lane)", quiet: true)
        }
        try absorb()
        try checkStep()
        if let countdown = exitCountdown {
            if countdown == 0 {
                try crashAndRecover("the journal failed, the process stopped")
                return
            }
            exitCountdown = countdown - 1
        } else if let failure = journalWriter.logFailure {
            // `onFailure` ran: the product stops the process (`ProcessExit.soon`), after a moment
            // in which queued replies still go out and requests still come in.
            exitCountdown = random.index(4)
            log("commit log failed (\(failure)): the hub stops in \(exitCountdown!) steps")
        }
        if workload, options.faults.contains(.crash), random.chance(1.0 / 400) {
            try crashAndRecover()
        }
    }

    func startOperation() throws {
        if !flushInFlight, random.chance(0.05) {
            startFlush()
            return
        }
        if options.faults.contains(.slow), random.chance(options.slowChance) {
            let index = random.index(clients.count)
            if let mailbox = clients[index].mailbox {
                mailbox.setSlow(!mailbox.isSlow)
                log("\(name(index)) \(mailbox.isSlow ? "stops" : "resumes") reading")
            }
            return
        }
        if random.chance(0.01), clients.count + signUpsInFlight < 16 {
            signUp()
            return
        }
        let idle = clients.indices.filter { !clients[$0].busy }
        guard !idle.isEmpty else { return }
        let index = idle[random.index(idle.count)]
        guard clients[index].mailbox != nil else {
            reconnect(index)
            return
        }
        if random.chance(options.disconnectChance) {
            try disconnect(index)
        } else if clients[index].principal.group == .rider {
            riderOperation(index)
        } else {
            driverOperation(index)
        }
    }

    func riderOperation(_ index: Int) {
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
            perform(index, "cancels \(name(trip))", trip: trip) { hub, principal, mailbox in
                do throws(HubError) {
                    return .canceled(try await hub.cancelTrip(id: trip, by: principal, from: mailbox))
                } catch {
                    return .refused(error)
                }
            }
        }
    }

    func driverOperation(_ index: Int) {
        let client = clients[index]
        let driverID = client.principal.userID
        let choice = random.index(100)
        if choice < 34, let trip = client.offers.last {
            clients[index].offers.removeAll { $0 == trip }
            update(index, trip: trip, TripUpdate(status: .started, driverID: driverID), "accepts")
        } else if choice < 40, let trip = client.offers.first {
            // Says no; refused (no_offer) when the offer ended meanwhile.
            clients[index].offers.removeAll { $0 == trip }
            perform(index, "declines \(name(trip))", trip: trip) { hub, principal, mailbox in
                do throws(HubError) {
                    try await hub.declineTrip(id: trip, by: principal, from: mailbox)
                    return .declined
                } catch {
                    return .refused(error)
                }
            }
        } else if choice < 43 {
            let online = !hub.drivers.isOnline(driverID)
            perform(index, online ? "goes online" : "goes offline") { hub, principal, _ in
                do throws(HubError) {
                    return .availability(online: try await hub.setAvailability(online: online, by: principal))
                } catch {
                    return .refused(error)
                }
            }
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
            if let connection = client.mailbox?.connectionID { clients[index].sentFixes[FixKey(fix)] = connection.rawValue }
            // As the server's socket does: the fix is handed over at once, and only the client's
            // next request waits for its trip to have recorded it (`settlingFix`).
            perform(index, "sends a location", settlingFix: false) { hub, principal, mailbox in
                do throws(HubError) {
                    return .located(try hub.recordFix(fix, by: principal, from: mailbox))
                } catch {
                    return .refused(error)
                }
            }
        }
    }

    func update(_ index: Int, trip: UUID, _ update: TripUpdate, _ verb: String) {
        perform(index, "\(verb) \(name(trip))", trip: trip) { hub, principal, mailbox in
            do throws(HubError) {
                return .updated(try await hub.updateTrip(id: trip, update, by: principal, from: mailbox))
            } catch {
                return .refused(error)
            }
        }
    }

    /// Starts a client's operation as a task on a lane of its own. Unless it is a fix itself, it
    /// first waits for the client's last fix to be recorded, as the server's socket does.
    func perform(
        _ index: Int, _ what: String, trip: UUID? = nil, settlingFix: Bool = true,
        _ body: @escaping @Sendable (Hub, Principal, SimMailbox) async -> Outcome
    ) {
        guard let mailbox = clients[index].mailbox else { return }
        clients[index].busy = true
        let unsettled = settlingFix ? clients[index].unsettledFix.take() : nil
        log("\(name(index)) \(what)", trip: trip)
        spawn(client: index) { [hub = hub!, principal = clients[index].principal] in
            await unsettled?.settle()
            return await body(hub, principal, mailbox)
        }
    }

    func spawn(client: Int?, _ body: @escaping @Sendable () async -> Outcome) {
        operations += 1
        pendingOperations += 1
        let ledger = self.ledger
        Task(executorPreference: scheduler.makeTaskExecutor()) {
            ledger.add(Ledger.Entry(client: client, outcome: await body()))
        }
    }

    /// A dispatch tick, as the server's `DispatchService` runs one every half second.
    func startTick() {
        tickInFlight = true
        lastTick = clock.now()
        log("dispatch tick", quiet: true)
        spawn(client: nil) { [hub = hub!] in
            await hub.dispatchTick()
            return .ticked
        }
    }

    /// A snapshot, as `SnapshotService.flush` with the single hub's journal runs it: the journal's
    /// current segment is closed right before the drain (an actor hop away in the product: other
    /// work may run in between), and the closed segments are deleted once the write succeeded.
    func startFlush() {
        flushInFlight = true
        log("snapshot starts")
        spawn(client: nil) { [service = service!, writer = journalWriter!] in
            let closed = writer.rotate()
            await Task.yield()
            do {
                try await service.flush()
                writer.dropSegments(through: closed)
                return .flushed(succeeded: true)
            } catch {
                return .flushed(succeeded: false)
            }
        }
    }

    /// A new account mid-run, as the sign-up route makes one (`UserDirectory.signUp`: the answer
    /// comes once the account is durable); once answered, its first connection.
    func signUp() {
        signUps += 1
        signUpsInFlight += 1
        let group: UserGroup = random.chance(0.5) ? .rider : .driver
        let number = signUps
        log("sign-up \(number) (\(group.rawValue)) starts")
        spawn(client: nil) { [users = hub.users] in
            do throws(HubError) {
                let user = try await users.signUp(
                    username: "\(group.rawValue)-signup\(number)", firstName: "S\(number)", lastName: "L\(number)", group: group,
                    photo: nil, passwordHash: "x"
                )
                return .signedUp(.success(user))
            } catch {
                return .signedUp(.failure(error))
            }
        }
    }

    func disconnect(_ index: Int) throws {
        guard let mailbox = clients[index].mailbox else { return }
        log("\(name(index)) disconnects")
        try closeConnection(mailbox)
        clients[index].mailbox = nil
        clients[index].busy = true
        clients[index].disconnecting = true
        clients[index].offers = []
        let joined = clients[index].joined
        clients[index].joined = []
        spawn(client: index) { [hub = hub!, principal = clients[index].principal] in
            await hub.disconnect(principal, mailbox: mailbox, joined: joined)
            return .disconnected
        }
    }

    /// Opens a new connection for the client; it then resumes every trip it joins that it saw
    /// before, as protocol §3.5 asks: from where its last resume of the trip started when that
    /// one's end mark never arrived (`pendingResume`), else from the highest `seq` it saw; that
    /// point is then the trip's pending one until this resume's mark arrives. (With the planted
    /// `clientsIgnoreResumeEnd`, from the highest `seq` seen, always.)
    func reconnect(_ index: Int) {
        connectionNumbers += 1
        let mailbox = SimMailbox(
            connectionID: ConnectionID(connectionNumbers), checkingDurabilityIn: options.checksDurabilityOnDelivery ? journal : nil
        )
        connections[connectionNumbers] = Connection(client: index)
        clients[index].mailbox = mailbox
        clients[index].busy = true
        clients[index].connecting = true
        var resumeFrom = clients[index].lastSeen
        if !options.clientsIgnoreResumeEnd {
            for (trip, seen) in resumeFrom {
                let point = clients[index].pendingResume[trip] ?? seen
                resumeFrom[trip] = point
                clients[index].pendingResume[trip] = point
            }
        }
        connections[connectionNumbers]?.resuming = Set(resumeFrom.keys)
        log("\(name(index)) connects as c\(connectionNumbers)")
        let owedTrips = Set(clients[index].owed.keys)
        spawn(client: index) { [hub = hub!, store = store!, journal, principal = clients[index].principal, resumeFrom] in
            let joined = await hub.connect(principal, mailbox: mailbox)
            var resumes: [ResumeResult] = []
            for trip in joined.sorted() {
                guard let seen = resumeFrom[trip] else { continue }
                do throws(HubError) {
                    let reply = try await hub.resume(tripID: trip, after: seen, by: principal, from: mailbox)
                    resumes.append(ResumeResult(tripID: trip, lastSeen: seen, reply: .success(reply)))
                } catch {
                    resumes.append(ResumeResult(tripID: trip, lastSeen: seen, reply: .failure(error)))
                }
            }
            // The web client resumes every trip it knows, finished ones too: by their actor while
            // in memory, else (`ClientSession.resume`) with the stored final state when it is newer,
            // then the end mark. The simulated one, to keep the seeds' schedules, does so only for
            // trips it is owed events of (`settleOwed`); the stored state comes as a replayed
            // current state, which it stands for.
            var resumedToo: Set<UUID> = []
            for trip in owedTrips.sorted() where !joined.contains(trip) {
                guard let seen = resumeFrom[trip] else { continue }
                do throws(HubError) {
                    let reply = try await hub.resume(tripID: trip, after: seen, by: principal, from: mailbox)
                    resumes.append(ResumeResult(tripID: trip, lastSeen: seen, reply: .success(reply)))
                    resumedToo.insert(trip)
                } catch {
                    guard error.code == .notFound, let stored = try? await store.trip(id: trip),
                        stored.riderID == principal.userID || stored.driverID == principal.userID
                    else {
                        resumes.append(ResumeResult(tripID: trip, lastSeen: seen, reply: .failure(error)))
                        continue
                    }
                    let reply: TripActor.ResumeReply
                    if stored.seq > seen {
                        // Read from the store: durable, whether or not its journal record was (a
                        // snapshot may write a change before its commit, and a crash then lose the latter).
                        journal.markRestored(stored)
                        let state = HubEvent.trip(hub.users.view(of: stored))
                        mailbox.replay([state])
                        reply = .currentState(state)
                    } else {
                        reply = .replay([])
                    }
                    mailbox.resumeEnded(trip: trip, through: max(seen, stored.seq))
                    resumes.append(ResumeResult(tripID: trip, lastSeen: seen, reply: .success(reply)))
                }
            }
            return .connected(joined: joined.union(resumedToo), resumes: resumes)
        }
    }

}
