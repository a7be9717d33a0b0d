import Foundation
import Synchronization

/// The connected drivers: where each one is (its geo cell), when it last sent a fix, whether it is
/// online, which trip it is busy with, and which trips it holds offers of.
///
/// A driver is *available* for an offer when it is connected, online, not busy and, for a trip
/// with a pick-up point, has a fresh position (a fix within `staleAfter`). Drivers of other cluster
/// nodes are known by their own node's reports (`report`), which say all of that for them.
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
        /// When the hub took its latest fix.
        var lastFix: Timestamp?
        /// Its own node's word (a driver of another cluster node, see `report`); nil for this hub's.
        var reported: Report?
        /// Not found by offer rounds yet: a connecting driver, until it took up the offers it
        /// holds without a frame (`Hub.connect`), so that no tick offers it one of those first.
        var hidden = false
    }

    /// What a cluster node says of one of its drivers.
    private struct Report {
        var busy: Bool
        var online: Bool
        var fresh: Bool
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
        /// Drivers (user ids) of this hub who went offline (`update.availability`); forgotten when
        /// their last connection leaves.
        var offline: Set<Int> = []

        func isBusy(_ place: Place) -> Bool { activeTrips[place.driverID] != nil || place.reported?.busy == true }

        func isOnline(_ place: Place) -> Bool { place.reported.map(\.online) ?? !offline.contains(place.driverID) }

        func isFresh(_ place: Place, now: Timestamp, staleAfter: Int64) -> Bool {
            if let reported = place.reported { return reported.fresh && place.point != nil }
            guard let last = place.lastFix else { return false }
            return now.microseconds - last.microseconds < staleAfter
        }

        /// Connected, online, not busy, and with `needsPosition` a fresh position.
        func isAvailable(_ place: Place, needsPosition: Bool, now: Timestamp, staleAfter: Int64) -> Bool {
            !isBusy(place) && isOnline(place) && (!needsPosition || isFresh(place, now: now, staleAfter: staleAfter))
        }

        /// The availability of a driver with a position, for operators.
        func state(of place: Place, now: Timestamp, staleAfter: Int64) -> DriverState {
            if !isOnline(place) { return .offline }
            return isFresh(place, now: now, staleAfter: staleAfter) ? .online : .stale
        }
    }

    public let grid: CellGrid
    /// Microseconds after its latest fix that a driver's position is stale.
    public let staleAfter: Int64
    private let state = Mutex(State())

    public init(grid: CellGrid = CellGrid(), staleAfter: Duration = .seconds(30)) {
        self.grid = grid
        self.staleAfter = staleAfter.microseconds
    }

    /// Adds a connected driver, without a position yet. A `hidden` one is found by no offer round
    /// until `reveal`.
    public func join(_ mailbox: any Mailbox, driverID: Int, hidden: Bool = false) {
        state.withLock { state in
            state.drivers[mailbox.connectionID] = Driver(mailbox: mailbox, driverID: driverID)
            state.places[mailbox.connectionID] = Place(driverID: driverID, hidden: hidden)
        }
    }

    /// Lets offer rounds find a driver that joined `hidden`.
    public func reveal(_ connection: ConnectionID) {
        state.withLock { $0.places[connection]?.hidden = false }
    }

    /// Removes a driver and returns the trips it holds offers of. A driver whose last connection
    /// left is online again when it comes back.
    public func leave(_ connection: ConnectionID) -> Set<UUID> {
        state.withLock { state in
            guard let driver = state.drivers.removeValue(forKey: connection) else { return [] }
            if let cell = state.places.removeValue(forKey: connection)?.cell { Self.remove(connection, from: cell, in: &state) }
            if state.offline.contains(driver.driverID), !state.drivers.values.contains(where: { $0.driverID == driver.driverID }) {
                state.offline.remove(driver.driverID)
            }
            return driver.offers
        }
    }

    /// Moves a connected driver to `point`, from one cell to another in one step when it
    /// crosses a border, and returns the trip the driver is busy with (read in the same critical
    /// section, so a fix costs one lock). A connection that is not a connected driver is ignored.
    /// `now`: when the hub took the fix (its position is fresh from then on); nil for a position
    /// another node reported, whose freshness that node reports (`report`).
    @discardableResult
    public func move(_ connection: ConnectionID, to point: GeoPoint, at now: Timestamp? = nil) -> UUID? {
        let cell = grid.cell(containing: point)
        return state.withLock { state in
            // A fix that stays in its cell costs one look-up of its place and one of its trip.
            guard let index = state.places.index(forKey: connection) else { return nil }
            let old = state.places.values[index].cell
            state.places.values[index].point = point
            state.places.values[index].cell = cell
            if let now { state.places.values[index].lastFix = now }
            if old != cell {
                if let old { Self.remove(connection, from: old, in: &state) }
                state.cells[cell, default: []].insert(connection)
            }
            return state.activeTrips[state.places.values[index].driverID]
        }
    }

    /// The drivers one search of a single round would alert of a new trip, nearest first: with a
    /// pick-up point, the available drivers (busy and offline ones left out; freshness is not
    /// checked) the dispatch policy finds around it; without one, every available driver. Each is
    /// remembered as offered the trip. For tests and benchmarks of the search; trips use
    /// `candidates`.
    func driversToAlert(for trip: UUID, near pickUp: GeoPoint?, policy: DispatchPolicy) -> [any Mailbox] {
        state.withLock { state in
            let chosen: [ConnectionID]
            if let pickUp {
                chosen = NearbySearch.nearest(to: pickUp, policy: policy, grid: grid) { cell in
                    guard let members = state.cells[cell] else { return [] }
                    return members.compactMap { connection in
                        guard let place = state.places[connection], let point = place.point,
                            state.isAvailable(place, needsPosition: false, now: Timestamp(microseconds: 0), staleAfter: 0)
                        else { return nil }
                        return (point: point, candidate: connection)
                    }
                }.map(\.candidate)
            } else {
                chosen = state.places.compactMap { connection, place in
                    state.isAvailable(place, needsPosition: false, now: Timestamp(microseconds: 0), staleAfter: 0) ? connection : nil
                }
            }
            return chosen.compactMap { connection in
                state.drivers[connection]?.offers.insert(trip)
                return state.drivers[connection]?.mailbox
            }
        }
    }

    /// A driver an offer may go to, as `candidates` finds it.
    struct Found {
        let candidate: OfferRounds.Candidate
        let mailbox: any Mailbox
    }

    /// The available drivers not in `excluding` (user ids), at most `limit` connections: with a
    /// pick-up point, the nearest within `radius` metres of it (available includes a fresh
    /// position), nearest first; without one, every available driver (position or not), in
    /// connection order. Read in one critical section.
    func candidates(near pickUp: GeoPoint?, radius: Double, excluding: Set<Int>, limit: Int, now: Timestamp) -> [Found] {
        state.withLock { state in
            let staleAfter = self.staleAfter
            guard let pickUp else {
                let chosen = state.places.filter { connection, place in
                    !place.hidden && !excluding.contains(place.driverID)
                        && state.isAvailable(place, needsPosition: false, now: now, staleAfter: staleAfter)
                }.keys.sorted { $0.rawValue < $1.rawValue }.prefix(limit)
                return chosen.compactMap { connection in
                    guard let driver = state.drivers[connection] else { return nil }
                    return Found(candidate: .init(connection: connection, driverID: driver.driverID, distance: nil), mailbox: driver.mailbox)
                }
            }
            let policy = DispatchPolicy(initialRadius: radius, maxRadius: radius, driverCount: limit)
            let nearest = NearbySearch.nearest(to: pickUp, policy: policy, grid: grid) { (cell: CellID) -> [(point: GeoPoint, candidate: ConnectionID)] in
                guard let members = state.cells[cell] else { return [] }
                return members.sorted { $0.rawValue < $1.rawValue }.compactMap { connection -> (point: GeoPoint, candidate: ConnectionID)? in
                    guard let place = state.places[connection], let point = place.point, !place.hidden, !excluding.contains(place.driverID),
                        state.isAvailable(place, needsPosition: true, now: now, staleAfter: staleAfter)
                    else { return nil }
                    return (point: point, candidate: connection)
                }
            }
            return nearest.compactMap { connection, distance -> Found? in
                guard let driver = state.drivers[connection] else { return nil }
                return Found(candidate: .init(connection: connection, driverID: driver.driverID, distance: distance), mailbox: driver.mailbox)
            }
        }
    }

    /// Of `connections`, those whose driver may no longer hold an offer. With `needsPosition` (a
    /// trip with a pick-up point): gone, busy, offline, or its position went stale. Without (a trip
    /// the reference way, listed on every driver's dashboard): gone or offline only; a busy driver
    /// keeps it, so its list still hears when the trip is decided.
    func unavailable(among connections: [ConnectionID], needsPosition: Bool, now: Timestamp) -> Set<ConnectionID> {
        guard !connections.isEmpty else { return [] }
        return state.withLock { state in
            Set(connections.filter { connection in
                guard let place = state.places[connection] else { return true }
                guard needsPosition else { return !state.isOnline(place) }
                return !state.isAvailable(place, needsPosition: true, now: now, staleAfter: staleAfter)
            })
        }
    }

    /// Whether a connection's driver may be offered a trip now (connected, online, not busy, and
    /// with `needsPosition` a fresh position).
    public func isAvailable(_ connection: ConnectionID, needsPosition: Bool, now: Timestamp) -> Bool {
        state.withLock { state in
            state.places[connection].map { state.isAvailable($0, needsPosition: needsPosition, now: now, staleAfter: staleAfter) } ?? false
        }
    }

    /// Remembers that `connections` hold an offer of `trip` (a connection that leaves names it).
    func noteOffered(_ trip: UUID, to connections: [ConnectionID]) {
        guard !connections.isEmpty else { return }
        state.withLock { state in
            for connection in connections { state.drivers[connection]?.offers.insert(trip) }
        }
    }

    /// Records what a driver's own cluster node says of it: busy, online, a fresh position. Only
    /// dispatch and operators read it; whether the driver may take a trip stays its own node's call.
    public func report(_ connection: ConnectionID, busy: Bool, online: Bool = true, fresh: Bool = true) {
        state.withLock { $0.places[connection]?.reported = Report(busy: busy, online: online, fresh: fresh) }
    }

    /// Forgets the offers of `trip` held by `connections` (withdrawn, or the trip left `REQUESTED`).
    func withdraw(_ trip: UUID, from connections: [ConnectionID]) {
        guard !connections.isEmpty else { return }
        state.withLock { state in
            for connection in connections { state.drivers[connection]?.offers.remove(trip) }
        }
    }

    /// Takes a driver (user id) of this hub offline (no offers) or back online. False when the
    /// driver has no connection here.
    @discardableResult
    public func setOnline(_ online: Bool, driverID: Int) -> Bool {
        state.withLock { state in
            guard state.drivers.values.contains(where: { $0.driverID == driverID }) else { return false }
            if online { state.offline.remove(driverID) } else { state.offline.insert(driverID) }
            return true
        }
    }

    /// Whether a driver (user id) of this hub is online (it is unless it said otherwise).
    public func isOnline(_ driverID: Int) -> Bool {
        state.withLock { !$0.offline.contains(driverID) }
    }

    /// A driver's latest position and when the hub took it, from whichever of its connections had
    /// the latest fix (or, for a driver of another node, its reported position).
    public func lastPosition(of driverID: Int) -> GeoPoint? {
        state.withLock { state in
            state.places.values.filter { $0.driverID == driverID && $0.point != nil }
                .max { ($0.lastFix?.microseconds ?? .min) < ($1.lastFix?.microseconds ?? .min) }?.point
        }
    }

    /// How many connected drivers are available for a trip with a pick-up point in each cell.
    public func availableByCell(at now: Timestamp) -> [CellID: Int] {
        state.withLock { state in
            var counts: [CellID: Int] = [:]
            var seen: Set<Int> = []
            for place in state.places.values {
                guard let cell = place.cell, state.isAvailable(place, needsPosition: true, now: now, staleAfter: staleAfter),
                    seen.insert(place.driverID).inserted
                else { continue }
                counts[cell, default: 0] += 1
            }
            return counts
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

    /// Where each connected driver with a known position is, whether it drives a trip, and whether
    /// it is online, offline or stale at `now`: one entry per driver (its latest socket's place
    /// when it has several). Read in one critical section, for the operators' live map.
    public func positions(at now: Timestamp = .now()) -> [DriverSighting] {
        state.withLock { state in
            var byDriver: [Int: (sighting: DriverSighting, fix: Int64)] = [:]
            byDriver.reserveCapacity(state.places.count)
            for place in state.places.values {
                guard let point = place.point else { continue }
                let fix = place.lastFix?.microseconds ?? .min
                if let known = byDriver[place.driverID], known.fix > fix { continue }
                let sighting = DriverSighting(
                    driverID: place.driverID, point: point, isBusy: state.isBusy(place),
                    state: state.state(of: place, now: now, staleAfter: staleAfter)
                )
                byDriver[place.driverID] = (sighting, fix)
            }
            return byDriver.values.map(\.sighting)
        }
    }

    /// How many drivers (user ids, each once) are connected, and of those how many are busy,
    /// offline, and stale (online, not busy, and without a fresh fix), at `now`.
    public func counts(at now: Timestamp = .now()) -> DriverCounts {
        state.withLock { state in
            var drivers: [Int: DriverState] = [:]
            var busy: Set<Int> = []
            for place in state.places.values {
                if state.isBusy(place) { busy.insert(place.driverID) }
                let placeState: DriverState = state.state(of: place, now: now, staleAfter: staleAfter)
                // A driver online with a fresh position on any connection is online.
                if drivers[place.driverID] != .online { drivers[place.driverID] = placeState }
            }
            return DriverCounts(
                connected: drivers.count, busy: busy.count, offline: drivers.values.count { $0 == .offline },
                stale: drivers.filter { $0.value == .stale && !busy.contains($0.key) }.count
            )
        }
    }

    /// The connections `including` accepts, each with its driver, position (if known), the trip its
    /// driver is busy with, whether it is online and when its latest fix came: what a cluster node
    /// tells the others of its own drivers.
    public func connections(including: (ConnectionID) -> Bool) -> [ConnectedDriver] {
        state.withLock { state in
            state.places.compactMap { connection, place in
                guard including(connection) else { return nil }
                return ConnectedDriver(
                    connection: connection, driverID: place.driverID, point: place.point, activeTrip: state.activeTrips[place.driverID],
                    isOnline: state.isOnline(place), lastFix: place.lastFix
                )
            }
        }
    }

    /// The trips each connection holds a live offer of (for tests and the simulator's checks).
    public func offeredTrips() -> [ConnectionID: Set<UUID>] {
        state.withLock { state in state.drivers.mapValues(\.offers) }
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

/// Whether a connected driver can be offered trips with a pick-up point, as operators see it.
public enum DriverState: String, Sendable, Equatable {
    /// Online, with a fresh position.
    case online
    /// Went offline (`update.availability`): offered nothing.
    case offline
    /// Online, but no fix for `stalePositionAfter`: offered no trips with a pick-up point.
    case stale
}

/// A connected driver's last known position, as operators see it.
public struct DriverSighting: Sendable, Equatable {
    public let driverID: Int
    public let point: GeoPoint
    /// Driving a `STARTED` or `IN_PROGRESS` trip.
    public let isBusy: Bool
    public let state: DriverState

    public init(driverID: Int, point: GeoPoint, isBusy: Bool, state: DriverState = .online) {
        self.driverID = driverID
        self.point = point
        self.isBusy = isBusy
        self.state = state
    }
}

/// Connected drivers by availability (`DriverMap.counts`).
public struct DriverCounts: Sendable, Equatable {
    public var connected: Int
    public var busy: Int
    public var offline: Int
    /// Online and free, but without a fresh position.
    public var stale: Int

    public init(connected: Int, busy: Int, offline: Int, stale: Int) {
        self.connected = connected
        self.busy = busy
        self.offline = offline
        self.stale = stale
    }
}

/// One driver connection as `DriverMap.connections(including:)` reports it.
public struct ConnectedDriver: Sendable, Equatable {
    public let connection: ConnectionID
    public let driverID: Int
    public let point: GeoPoint?
    /// The trip its driver is busy with.
    public let activeTrip: UUID?
    public let isOnline: Bool
    /// When the hub took its latest fix.
    public let lastFix: Timestamp?

    public init(connection: ConnectionID, driverID: Int, point: GeoPoint?, activeTrip: UUID?, isOnline: Bool = true, lastFix: Timestamp? = nil) {
        self.connection = connection
        self.driverID = driverID
        self.point = point
        self.activeTrip = activeTrip
        self.isOnline = isOnline
        self.lastFix = lastFix
    }
}
