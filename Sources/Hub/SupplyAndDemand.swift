import Foundation
import Synchronization

/// What a trip actor needs of the hub's dispatch settings, and where it reports outcomes.
struct DispatchSettings: Sendable {
    var search = DispatchPolicy()
    var offers = OfferPolicy()
    var eta = ETAModel()
    var pickUp = PickUpPolicy()
    var outcomes = DispatchOutcomes()
}

/// The requests that ended without a driver in the last hour, with their pick-up points: the
/// operators' "no driver" counts per cell. In memory only (a restart starts it empty); bounded.
public final class DispatchOutcomes: Sendable {
    /// How far back the counts reach, in microseconds.
    public static let window: Int64 = 60 * 60 * 1_000_000
    /// Most outcomes kept (the oldest go first).
    static let capacity = 100_000

    private let noDriver = Mutex<[(at: Timestamp, pickUp: GeoPoint?)]>([])

    public init() {}

    func recordNoDriver(at now: Timestamp, pickUp: GeoPoint?) {
        noDriver.withLock { entries in
            entries.append((now, pickUp))
            Self.prune(&entries, now: now)
        }
    }

    /// The pick-up points (nil: a trip without one) of the requests that ended without a driver
    /// within the hour before `now`, oldest first.
    public func noDriverFound(before now: Timestamp) -> [GeoPoint?] {
        noDriver.withLock { entries in
            Self.prune(&entries, now: now)
            return entries.map(\.pickUp)
        }
    }

    private static func prune(_ entries: inout [(at: Timestamp, pickUp: GeoPoint?)], now: Timestamp) {
        let cutoff = now.microseconds - window
        let old = entries.prefix { $0.at.microseconds <= cutoff }.count
        let excess = max(0, entries.count - old - capacity)
        if old + excess > 0 { entries.removeFirst(old + excess) }
    }
}

/// Supply and demand per geo cell, for operators (docs/protocol.md §5.1): the requests waiting
/// for a driver, the drivers available for them, and the requests that ended without a driver in
/// the last hour. Only cells with something in them are listed.
public struct SupplyAndDemand: Sendable, Equatable {
    public struct Cell: Sendable, Equatable {
        public let cell: CellID
        /// `REQUESTED` trips whose pick-up point lies in the cell.
        public var waiting = 0
        /// Drivers available for a trip with a pick-up point (online, fresh, not busy) there.
        public var available = 0
        /// Requests with a pick-up point there that ended with `no_driver_found` in the last hour.
        public var noDriverLastHour = 0

        public init(cell: CellID, waiting: Int = 0, available: Int = 0, noDriverLastHour: Int = 0) {
            self.cell = cell
            self.waiting = waiting
            self.available = available
            self.noDriverLastHour = noDriverLastHour
        }
    }

    /// Band by band from the south, each band's cells from the west.
    public var cells: [Cell]
    /// Waiting requests without a pick-up point (no cell).
    public var waitingWithoutPickUp: Int
    /// Requests without a pick-up point that ended without a driver in the last hour.
    public var noDriverWithoutPickUpLastHour: Int

    public init(cells: [Cell], waitingWithoutPickUp: Int, noDriverWithoutPickUpLastHour: Int) {
        self.cells = cells
        self.waitingWithoutPickUp = waitingWithoutPickUp
        self.noDriverWithoutPickUpLastHour = noDriverWithoutPickUpLastHour
    }
}

extension Hub {
    /// Supply and demand per cell of the driver map's grid at the hub's clock: this hub's waiting
    /// requests (as released), the available drivers it knows (in a cluster, every node's, as
    /// reported), and the requests that ended here without a driver in the last hour.
    public func supplyAndDemand() -> SupplyAndDemand {
        let now = clock.now()
        var cells: [CellID: SupplyAndDemand.Cell] = [:]
        func add(_ cell: CellID, _ change: (inout SupplyAndDemand.Cell) -> Void) {
            change(&cells[cell, default: SupplyAndDemand.Cell(cell: cell)])
        }
        var waitingWithout = 0
        for trip in index.requestedTrips() {
            guard let point = trip.pickUpLocation else {
                waitingWithout += 1
                continue
            }
            add(drivers.grid.cell(containing: point)) { $0.waiting += 1 }
        }
        for (cell, count) in drivers.availableByCell(at: now) {
            add(cell) { $0.available += count }
        }
        var noDriverWithout = 0
        for pickUp in dispatchOutcomes.noDriverFound(before: now) {
            guard let pickUp else {
                noDriverWithout += 1
                continue
            }
            add(drivers.grid.cell(containing: pickUp)) { $0.noDriverLastHour += 1 }
        }
        let sorted = cells.values.sorted { ($0.cell.band, $0.cell.column) < ($1.cell.band, $1.cell.column) }
        return SupplyAndDemand(cells: sorted, waitingWithoutPickUp: waitingWithout, noDriverWithoutPickUpLastHour: noDriverWithout)
    }
}
