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
    /// One connected driver.
    private struct Driver {
        let mailbox: any Mailbox
        let driverID: Int
        var point: GeoPoint?
        var cell: CellID?
        /// Trips offered to this driver that may still wait for one.
        var offers: Set<UUID> = []
    }

    /// The drivers with a known position in one cell.
    private typealias DriverCell = [ConnectionID: GeoPoint]

    private struct State {
        var drivers: [ConnectionID: Driver] = [:]
        var cells: [CellID: DriverCell] = [:]
        /// The trip each busy driver (user id) is driving.
        var activeTrips: [Int: UUID] = [:]

        func isAvailable(_ driver: Driver) -> Bool { activeTrips[driver.driverID] == nil }
    }

    public let grid: CellGrid
    private let state = Mutex(State())

    public init(grid: CellGrid = CellGrid()) {
        self.grid = grid
    }

    func join(_ mailbox: any Mailbox, driverID: Int) {
        state.withLock { $0.drivers[mailbox.connectionID] = Driver(mailbox: mailbox, driverID: driverID) }
    }

    /// Removes a driver and returns the trips it was offered that have not left `REQUESTED`.
    func leave(_ connection: ConnectionID) -> Set<UUID> {
        state.withLock { state in
            guard let driver = state.drivers.removeValue(forKey: connection) else { return [] }
            if let cell = driver.cell { Self.remove(connection, from: cell, in: &state) }
            return driver.offers
        }
    }

    /// Moves a connected driver to `point`, from one cell to another in one step when it
    /// crosses a border, and returns the trip the driver is busy with (read in the same critical
    /// section, so a fix costs one lock). A connection that is not a connected driver is ignored.
    func move(_ connection: ConnectionID, to point: GeoPoint) -> UUID? {
        let cell = grid.cell(containing: point)
        return state.withLock { state in
            // Updated in place: copying the driver out and back costs a retain and release of
            // its mailbox and offers on every fix.
            guard let index = state.drivers.index(forKey: connection) else { return nil }
            if let old = state.drivers.values[index].cell, old != cell { Self.remove(connection, from: old, in: &state) }
            state.cells[cell, default: [:]][connection] = point
            state.drivers.values[index].point = point
            state.drivers.values[index].cell = cell
            return state.activeTrips[state.drivers.values[index].driverID]
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
                    return members.compactMap { connection, point in
                        guard let driver = state.drivers[connection], state.isAvailable(driver) else { return nil }
                        return (point: point, candidate: connection)
                    }
                }.map(\.candidate)
            } else {
                chosen = state.drivers.compactMap { connection, driver in state.isAvailable(driver) ? connection : nil }
            }
            return chosen.compactMap { connection in
                state.drivers[connection]?.offers.insert(trip)
                return state.drivers[connection]?.mailbox
            }
        }
    }

    /// Forgets the offers of a trip that left `REQUESTED`.
    func withdraw(_ trip: UUID, from connections: [ConnectionID]) {
        state.withLock { state in
            for connection in connections { state.drivers[connection]?.offers.remove(trip) }
        }
    }

    /// Marks a driver (user id) busy with `trip`, unless it is busy with another trip; false then.
    func claim(_ trip: UUID, for driverID: Int) -> Bool {
        state.withLock { state in
            guard state.activeTrips[driverID] == nil || state.activeTrips[driverID] == trip else { return false }
            state.activeTrips[driverID] = trip
            return true
        }
    }

    /// Makes a driver available again when `trip` was the one it was busy with.
    func clearActiveTrip(_ trip: UUID, of driverID: Int) {
        state.withLock { state in
            if state.activeTrips[driverID] == trip { state.activeTrips[driverID] = nil }
        }
    }

    /// The trip a driver is busy with, if any.
    public func activeTrip(of driverID: Int) -> UUID? {
        state.withLock { $0.activeTrips[driverID] }
    }

    /// Connected drivers.
    public var count: Int { state.withLock { $0.drivers.count } }

    /// Which cell each positioned driver is in, read in one consistent state (for tests and metrics).
    public func cellMembership() -> [CellID: Set<ConnectionID>] {
        state.withLock { state in state.cells.mapValues { Set($0.keys) } }
    }

    /// The cell a connection is recorded in, if it has a position.
    public func cell(of connection: ConnectionID) -> CellID? {
        state.withLock { $0.drivers[connection]?.cell }
    }

    private static func remove(_ connection: ConnectionID, from cell: CellID, in state: inout State) {
        state.cells[cell]?[connection] = nil
        if state.cells[cell]?.isEmpty == true { state.cells[cell] = nil }
    }
}
