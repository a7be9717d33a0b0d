import Foundation
import Synchronization

/// Which live trips exist, in which status, and whose they are: the derived view that
/// trip lists, group joins on connect and metrics read without visiting every actor.
/// Each `TripActor` updates it synchronously as part of every change, so it is never
/// behind its actor for longer than the change itself.
public final class TripIndex: Sendable {
    private struct State {
        var trips: [UUID: Trip] = [:]
        var requested: Set<UUID> = []
        var byUser: [Int: Set<UUID>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    func upsert(_ trip: Trip) {
        state.withLock { state in
            if let old = state.trips[trip.id] {
                Self.unlink(old, from: &state)
            }
            state.trips[trip.id] = trip
            if trip.status == .requested { state.requested.insert(trip.id) }
            for user in [trip.riderID, trip.driverID].compactMap({ $0 }) {
                state.byUser[user, default: []].insert(trip.id)
            }
        }
    }

    func remove(_ id: UUID) {
        state.withLock { state in
            if let old = state.trips.removeValue(forKey: id) {
                Self.unlink(old, from: &state)
            }
        }
    }

    private static func unlink(_ trip: Trip, from state: inout State) {
        state.requested.remove(trip.id)
        for user in [trip.riderID, trip.driverID].compactMap({ $0 }) {
            state.byUser[user]?.remove(trip.id)
            if state.byUser[user]?.isEmpty == true { state.byUser[user] = nil }
        }
    }

    /// The latest state of a live trip.
    public func trip(id: UUID) -> Trip? {
        state.withLock { $0.trips[id] }
    }

    /// Live trips where the user is rider or driver.
    public func trips(involving userID: Int) -> [Trip] {
        state.withLock { state in (state.byUser[userID] ?? []).compactMap { state.trips[$0] } }
    }

    /// Every live trip.
    public func allTrips() -> [Trip] {
        state.withLock { Array($0.trips.values) }
    }

    /// Every trip waiting for a driver.
    public func requestedTrips() -> [Trip] {
        state.withLock { state in state.requested.compactMap { state.trips[$0] } }
    }

    /// Number of live trips in each status.
    public func countsByStatus() -> [TripStatus: Int] {
        state.withLock { state in
            var counts: [TripStatus: Int] = [:]
            for trip in state.trips.values { counts[trip.status, default: 0] += 1 }
            return counts
        }
    }
}
