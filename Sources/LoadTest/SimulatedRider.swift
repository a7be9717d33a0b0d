import BenchSupport
import NIOCore
import Synchronization

/// One simulated rider: requests a trip picking up near a random driver, rides it to the end,
/// pauses, and requests again. It measures what a rider sees: the alert latency's start (its
/// `create.trip`), the accept latency (its STARTED state), and the location latency (each
/// `trip.location` matched to the fix its driver scheduled). A trip nobody accepts within the
/// accept timeout is canceled.
final class SimulatedRider: Sendable {
    private enum Job {
        case idle
        /// `create.trip` sent at `sentAt`; `trip` once the hub echoed it.
        case requesting(sentAt: UInt64, trip: String?)
        case riding(trip: String)

        var trip: String? {
            switch self {
            case .idle: nil
            case .requesting(_, let trip): trip
            case .riding(let trip): trip
            }
        }
    }

    private struct State {
        var client: WebSocketClient?
        var random: SplitMix64
        var job = Job.idle
        /// Counts requests, so a time-out knows whether it is still about the current one.
        var requests = 0
    }

    let id: Int
    let token: String
    private let state: Mutex<State>

    init(id: Int, token: String, seed: UInt64) {
        self.id = id
        self.token = token
        state = Mutex(State(random: SplitMix64(seed: seed)))
    }

    func attach(_ client: WebSocketClient) {
        state.withLock { $0.client = client }
    }

    /// When the rider's current request was sent, if `trip` may be it.
    func requestSentAt(trip: String) -> UInt64? {
        state.withLock { state in
            guard case .requesting(let sentAt, let current) = state.job, current == nil || current == trip else { return nil }
            return sentAt
        }
    }

    /// Requests a trip from the intersection nearest a random driver to one `tripBlocks` away.
    func requestTrip(in simulation: Simulation) {
        guard simulation.isRunning else { return }
        let city = simulation.city
        let driverIndex = state.withLock { Int.random(in: 0..<simulation.driverList.count, using: &$0.random) }
        let pickUp = city.nearestIntersection(to: simulation.driverList[driverIndex].position)
        let request = state.withLock { state -> (client: WebSocketClient, frame: String, number: Int)? in
            guard let client = state.client, case .idle = state.job else { return nil }
            let dropOff = city.intersection(blocksAway: simulation.settings.tripBlocks, from: pickUp, using: &state.random)
            state.requests += 1
            state.job = .requesting(sentAt: MonotonicClock.nanoseconds(), trip: nil)
            let frame = ClientFrames.createTrip(
                riderID: id, from: city.coordinates(of: city.position(of: pickUp)), Self.address(pickUp),
                to: city.coordinates(of: city.position(of: dropOff)), Self.address(dropOff)
            )
            return (client, frame, state.requests)
        }
        guard let request else { return }
        request.client.send(request.frame)
        simulation.measurements.add(.framesOut)
        request.client.channel.eventLoop.scheduleTask(in: .milliseconds(Int64(simulation.settings.acceptTimeout * 1000))) {
            self.acceptTimedOut(request: request.number, in: simulation)
        }
    }

    /// Cancels the current request if no driver has taken it yet (at the end of a run).
    func cancelWaitingTrip() {
        let cancel = state.withLock { state -> (WebSocketClient, String)? in
            guard let client = state.client, case .requesting(_, let trip?) = state.job else { return nil }
            return (client, ClientFrames.cancelTrip(trip))
        }
        if let cancel { cancel.0.send(cancel.1) }
    }

    func received(_ frame: HubFrame, in simulation: Simulation) {
        let measurements = simulation.measurements
        switch frame {
        case .trip(let trip):
            measurements.observe(trip)
            guard trip.riderID == id else { return }
            switch trip.status {
            case "REQUESTED":
                state.withLock { state in
                    if case .requesting(let sentAt, nil) = state.job { state.job = .requesting(sentAt: sentAt, trip: trip.id) }
                }
            case "STARTED":
                if let sentAt = trip.driverID.flatMap({ simulation.drivers[$0] })?.acceptSentAt(trip: trip.id) {
                    measurements.latency(.accept, sentAt: sentAt)
                }
                state.withLock { state in
                    if state.job.trip == trip.id { state.job = .riding(trip: trip.id) }
                }
            case "COMPLETED", "CANCELED":
                let ended = state.withLock { state -> Bool in
                    guard state.job.trip == trip.id else { return false }
                    state.job = .idle
                    return true
                }
                guard ended else { return }
                if trip.status == "COMPLETED" { measurements.add(.tripsCompleted) }
                pauseThenRequest(in: simulation)
            default:
                break
            }
        case .location(_, let driverID, let point):
            if let scheduled = simulation.drivers[driverID]?.matchFix(at: point) {
                measurements.latency(.location, sentAt: scheduled)
            }
        case .error(let code, let requestType):
            measurements.error(code: code, requestType: requestType)
            guard requestType == "create.trip" else { return }
            state.withLock { $0.job = .idle }
            pauseThenRequest(in: simulation)
        case .echoedFix, .other:
            break
        }
    }

    private func pauseThenRequest(in simulation: Simulation) {
        guard let client = state.withLock({ $0.client }) else { return }
        client.channel.eventLoop.scheduleTask(in: .milliseconds(Int64(simulation.settings.riderPause * 1000))) {
            self.requestTrip(in: simulation)
        }
    }

    /// No driver took request number `number` in time: cancel it (the CANCELED state then frees
    /// the rider), or give up on it if the hub never even echoed it.
    private func acceptTimedOut(request number: Int, in simulation: Simulation) {
        let action = state.withLock { state -> (client: WebSocketClient?, cancel: String?)? in
            guard state.requests == number, case .requesting(_, let trip) = state.job else { return nil }
            if trip == nil { state.job = .idle }
            return (state.client, trip.map(ClientFrames.cancelTrip))
        }
        guard let action else { return }
        simulation.measurements.add(.unacceptedTrips)
        if let cancel = action.cancel {
            action.client?.send(cancel)
            simulation.measurements.add(.framesOut)
        } else {
            pauseThenRequest(in: simulation)
        }
    }

    /// `Street 3 & Avenue 7`.
    private static func address(_ intersection: CityModel.Intersection) -> String {
        "Street \(intersection.column) & Avenue \(intersection.row)"
    }
}
