import Foundation
import Synchronization

/// Which live trips exist, in which status, and whose they are: the derived view that
/// trip lists, group joins on connect and metrics read without visiting every actor.
///
/// It keeps two states of each trip. The *latest* (`upsert`), which each `TripActor` records
/// synchronously as part of every change, only routes: which trips a connecting socket joins
/// (`latestTrips(involving:)`). The *released* one (`release`), recorded when the trip's event
/// for that state goes out, i.e. once the change is durable, is what every read returns: trip
/// lists, look-ups, operator views and counts. So nobody reads a state that a crash could undo,
/// while a socket that connects between a change and its commit still joins the trip.
public final class TripIndex: Sendable {
    private struct State {
        var latest: [UUID: Trip] = [:]
        var released: [UUID: Trip] = [:]
        /// Trips whose released state is `REQUESTED`.
        var requested: Set<UUID> = []
        /// Trips whose latest state is `REQUESTED`: they wait for a driver (dispatch ticks visit them).
        var waiting: Set<UUID> = []
        /// From the latest states (a superset of the released ones' users).
        var byUser: [Int: Set<UUID>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Records a trip's latest state, durable or not.
    func upsert(_ trip: Trip) {
        state.withLock { state in
            if let old = state.latest[trip.id] {
                Self.unlinkUsers(of: old, from: &state)
            }
            state.latest[trip.id] = trip
            if trip.status == .requested { state.waiting.insert(trip.id) } else { state.waiting.remove(trip.id) }
            for user in [trip.riderID, trip.driverID].compactMap({ $0 }) {
                state.byUser[user, default: []].insert(trip.id)
            }
        }
    }

    /// Records a durable state of a trip, the one clients may now read.
    func release(_ trip: Trip) {
        state.withLock { state in
            guard state.latest[trip.id] != nil else { return }
            state.released[trip.id] = trip
            if trip.status == .requested {
                state.requested.insert(trip.id)
            } else {
                state.requested.remove(trip.id)
            }
        }
    }

    func remove(_ id: UUID) {
        state.withLock { state in
            if let old = state.latest.removeValue(forKey: id) {
                Self.unlinkUsers(of: old, from: &state)
            }
            state.released[id] = nil
            state.requested.remove(id)
            state.waiting.remove(id)
        }
    }

    private static func unlinkUsers(of trip: Trip, from state: inout State) {
        for user in [trip.riderID, trip.driverID].compactMap({ $0 }) {
            state.byUser[user]?.remove(trip.id)
            if state.byUser[user]?.isEmpty == true { state.byUser[user] = nil }
        }
    }

    /// The latest states of the live trips where the user is rider or driver, durable or not:
    /// for routing a connection to its trips, never for showing.
    func latestTrips(involving userID: Int) -> [Trip] {
        state.withLock { state in (state.byUser[userID] ?? []).compactMap { state.latest[$0] } }
    }

    /// The latest state of every live trip, durable or not: for routing, and for the simulator's
    /// checks of the actors' own state; never for showing.
    @_spi(Simulation) public func latestTrips() -> [Trip] {
        state.withLock { Array($0.latest.values) }
    }

    /// The trips that wait for a driver (latest state `REQUESTED`), in id order; with `withPickUp`,
    /// only those with (true) or without (false) a pick-up point.
    func waitingTrips(withPickUp: Bool? = nil) -> [UUID] {
        state.withLock { state in
            state.waiting.filter { id in withPickUp.map { (state.latest[id]?.pickUpLocation != nil) == $0 } ?? true }.sorted()
        }
    }

    /// The released state of a live trip.
    public func trip(id: UUID) -> Trip? {
        state.withLock { $0.released[id] }
    }

    /// Live trips where the user is rider or driver, as released.
    public func trips(involving userID: Int) -> [Trip] {
        state.withLock { state in (state.byUser[userID] ?? []).compactMap { state.released[$0] } }
    }

    /// Every live trip, as released.
    public func allTrips() -> [Trip] {
        state.withLock { Array($0.released.values) }
    }

    /// Every trip waiting for a driver, as released.
    public func requestedTrips() -> [Trip] {
        state.withLock { state in state.requested.compactMap { state.released[$0] } }
    }

    /// Number of live trips in each status, as released.
    public func countsByStatus() -> [TripStatus: Int] {
        state.withLock { state in
            var counts: [TripStatus: Int] = [:]
            for trip in state.released.values { counts[trip.status, default: 0] += 1 }
            return counts
        }
    }
}
