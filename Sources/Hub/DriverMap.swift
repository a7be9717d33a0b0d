import Foundation
import Synchronization

/// The connected drivers: where each one is (its geo cell), which trip it is busy with, and
/// which trips it was offered.
///
/// Drivers live in cells of a `CellGrid` (one `DriverCell` per non-empty cell). All of it sits
/// behind one short lock rather than one actor per cell: a driver crossing a border leaves one
/// cell and enters the next in the same critical section, and a nearby search reads every cell
/// it visits in one consistent state, so no search ever sees a driver in two cells or in none.
/// Critical sections are a few dictionary operations (a search visits only the cells around its
/// pick-up), far below a microsecond each; the benchmark document has the numbers.
public final class DriverMap: Sendable {
    /// One connected driver: who it is and how to reach it.
    private struct Driver {
        let mailbox: any Mailbox
        let driverID: Int
        /// Trips offered to this driver that may still wait for one.
        var offers: Set<UUID> = []
    }

    /// Where a connected driver is. Plain values apart from `Driver`, so the 20,000 fixes a
    /// second that move drivers (and the searches) copy no reference and count none.
    private struct Place {
        let driverID: Int
        var cell: CellID?
        var point: GeoPoint?
        /// Busy by its own node's word (a driver of another cluster node, see `report`).
        var reportedBusy = false
    }

    /// The connected drivers with a known position in one cell; where each one is stands in its
    /// `Place`, so a fix that stays in its cell (nearly all: a 1 km cell takes minutes to cross)
    /// changes no cell.
    private typealias DriverCell = Set<ConnectionID>

    private struct State {
        var drivers: [ConnectionID: Driver] = [:]
        /// The same connections as `drivers`.
        var places: [ConnectionID: Place] = [:]
        var cells: [CellID: DriverCell] = [:]
        /// The trip each busy driver (user id) is driving.
        var activeTrips: [Int: UUID] = [:]

        func isAvailable(_ place: Place) -> Bool { activeTrips[place.driverID] == nil && !place.reportedBusy }
    }

    public let grid: CellGrid
    private let state = Mutex(State())

    public init(grid: CellGrid = CellGrid()) {
        self.grid = grid
    }

    /// Adds a connected driver, without a position yet.
    public func join(_ mailbox: any Mailbox, driverID: Int) {
        state.withLock { state in
            state.drivers[mailbox.connectionID] = Driver(mailbox: mailbox, driverID: driverID)
            state.places[mailbox.connectionID] = Place(driverID: driverID)
        }
    }

    /// Removes a driver and returns the trips it was offered that have not left `REQUESTED`.
    public func leave(_ connection: ConnectionID) -> Set<UUID> {
        state.withLock { state in
            guard let driver = state.drivers.removeValue(forKey: connection) else { return [] }
            if let cell = state.places.removeValue(forKey: connection)?.cell { Self.remove(connection, from: cell, in: &state) }
            return driver.offers
        }
    }

    /// Moves a connected driver to `point`, from one cell to another in one step when it
    /// crosses a border, and returns the trip the driver is busy with (read in the same critical
    /// section, so a fix costs one lock). A connection that is not a connected driver is ignored.
    @discardableResult
    public func move(_ connection: ConnectionID, to point: GeoPoint) -> UUID? {
        let cell = grid.cell(containing: point)
        return state.withLock { state in
            // A fix that stays in its cell costs one look-up of its place and one of its trip.
            guard let index = state.places.index(forKey: connection) else { return nil }
            let old = state.places.values[index].cell
            state.places.values[index].point = point
            state.places.values[index].cell = cell
            if old != cell {
                if let old { Self.remove(connection, from: old, in: &state) }
                state.cells[cell, default: []].insert(connection)
            }
            return state.activeTrips[state.places.values[index].driverID]
        }
    }

    /// The drivers to alert of a new trip, nearest first: with a pick-up point, the available
    /// drivers the dispatch policy finds around it; without one, every available driver (as the
    /// reference app alerted all drivers). Each is remembered as offered the trip.
    func driversToAlert(for trip: UUID, near pickUp: GeoPoint?, policy: DispatchPolicy) -> [any Mailbox] {
        state.withLock { state in
            let chosen: [ConnectionID]
            if let pickUp {
                chosen = NearbySearch.nearest(to: pickUp, policy: policy, grid: grid) { cell in
                    guard let members = state.cells[cell] else { return [] }
                    return members.compactMap { connection in
                        guard let place = state.places[connection], let point = place.point, state.isAvailable(place) else { return nil }
                        return (point: point, candidate: connection)
                    }
                }.map(\.candidate)
            } else {
                chosen = state.places.compactMap { connection, place in state.isAvailable(place) ? connection : nil }
            }
            return chosen.compactMap { connection in
                state.drivers[connection]?.offers.insert(trip)
                return state.drivers[connection]?.mailbox
            }
        }
    }

    /// Records what a driver's own cluster node says of it: a busy driver is offered no trips.
    /// Only dispatch reads it; whether the driver may take a trip stays its own node's call.
    public func report(_ connection: ConnectionID, busy: Bool) {
        state.withLock { $0.places[connection]?.reportedBusy = busy }
    }

    /// Forgets the offers of a trip that left `REQUESTED`.
    func withdraw(_ trip: UUID, from connections: [ConnectionID]) {
        state.withLock { state in
            for connection in connections { state.drivers[connection]?.offers.remove(trip) }
        }
    }

    /// Marks a driver (user id) busy with `trip`, unless it is busy with another trip; false then.
    public func claim(_ trip: UUID, for driverID: Int) -> Bool {
        state.withLock { state in
            guard state.activeTrips[driverID] == nil || state.activeTrips[driverID] == trip else { return false }
            state.activeTrips[driverID] = trip
            return true
        }
    }

    /// Makes a driver available again when `trip` was the one it was busy with.
    public func clearActiveTrip(_ trip: UUID, of driverID: Int) {
        state.withLock { state in
            if state.activeTrips[driverID] == trip { state.activeTrips[driverID] = nil }
        }
    }

    /// The trip a driver is busy with, if any.
    public func activeTrip(of driverID: Int) -> UUID? {
        state.withLock { $0.activeTrips[driverID] }
    }

    /// Where each connected driver with a known position is, and whether it drives a trip: one
    /// entry per driver (its latest socket's place when it has several). Read in one critical
    /// section, for the operators' live map.
    public func positions() -> [DriverSighting] {
        state.withLock { state in
            var byDriver: [Int: DriverSighting] = [:]
            byDriver.reserveCapacity(state.places.count)
            for place in state.places.values {
                guard let point = place.point else { continue }
                byDriver[place.driverID] = DriverSighting(
                    driverID: place.driverID, point: point, isBusy: state.activeTrips[place.driverID] != nil
                )
            }
            return Array(byDriver.values)
        }
    }

    /// The connections `including` accepts, each with its driver, position (if known) and the trip
    /// its driver is busy with: what a cluster node tells the others of its own drivers.
    public func connections(including: (ConnectionID) -> Bool) -> [ConnectedDriver] {
        state.withLock { state in
            state.places.compactMap { connection, place in
                guard including(connection) else { return nil }
                return ConnectedDriver(
                    connection: connection, driverID: place.driverID, point: place.point, activeTrip: state.activeTrips[place.driverID]
                )
            }
        }
    }

    /// Connected drivers.
    public var count: Int { state.withLock { $0.drivers.count } }

    /// Which cell each positioned driver is in, read in one consistent state (for tests and metrics).
    public func cellMembership() -> [CellID: Set<ConnectionID>] {
        state.withLock { $0.cells }
    }

    /// The cell a connection is recorded in, if it has a position.
    public func cell(of connection: ConnectionID) -> CellID? {
        state.withLock { $0.places[connection]?.cell }
    }

    private static func remove(_ connection: ConnectionID, from cell: CellID, in state: inout State) {
        state.cells[cell]?.remove(connection)
        if state.cells[cell]?.isEmpty == true { state.cells[cell] = nil }
    }
}

/// A connected driver's last known position, as operators see it.
public struct DriverSighting: Sendable, Equatable {
    public let driverID: Int
    public let point: GeoPoint
    /// Driving a `STARTED` or `IN_PROGRESS` trip.
    public let isBusy: Bool
}

/// One driver connection as `DriverMap.connections(including:)` reports it.
public struct ConnectedDriver: Sendable, Equatable {
    public let connection: ConnectionID
    public let driverID: Int
    public let point: GeoPoint?
    /// The trip its driver is busy with.
    public let activeTrip: UUID?
}
