import Foundation
import Hub
import Hummingbird

/// `GET /api/demand/`: supply and demand per geo cell (`Hub.supplyAndDemand`), for operators only;
/// the operator feed sends the same as `operator.demand` (docs/protocol.md §5.1).
struct DemandController: Sendable {
    let hub: Hub
    let auth: Authenticator

    static let path = "/api/demand/"

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get(RouterPath(Self.path)) { request, _ in
            let user = try await auth.requireUser(request)
            guard user.group == .operator else {
                throw APIError.detail(.forbidden, "Only operators see supply and demand.")
            }
            return JSONResponse.make(DemandJSON(hub.supplyAndDemand(), grid: hub.drivers.grid, at: hub.clock.now()))
        }
    }
}

/// Supply and demand as operators get it: `{"cell_size", "generated", "window_seconds", "cells":
/// [{"band", "column", "center", "bounds", "waiting", "available", "no_driver_last_hour"}],
/// "without_pick_up": {"waiting", "no_driver_last_hour"}}`; coordinates rounded to 5 decimals.
struct DemandJSON: Encodable {
    struct Point: Encodable {
        let lat: Double
        let lng: Double
    }

    struct Bounds: Encodable {
        let south: Double
        let west: Double
        let north: Double
        let east: Double
    }

    struct Cell: Encodable {
        let band: Int32
        let column: Int32
        let center: Point
        let bounds: Bounds
        let waiting: Int
        let available: Int
        let noDriverLastHour: Int

        enum CodingKeys: String, CodingKey {
            case band, column, center, bounds, waiting, available
            case noDriverLastHour = "no_driver_last_hour"
        }
    }

    struct WithoutPickUp: Encodable {
        let waiting: Int
        let noDriverLastHour: Int

        enum CodingKeys: String, CodingKey {
            case waiting
            case noDriverLastHour = "no_driver_last_hour"
        }
    }

    let cellSize: Double
    let generated: String
    let windowSeconds: Int
    let cells: [Cell]
    let withoutPickUp: WithoutPickUp

    enum CodingKeys: String, CodingKey {
        case cells, generated
        case cellSize = "cell_size"
        case windowSeconds = "window_seconds"
        case withoutPickUp = "without_pick_up"
    }

    init(_ demand: SupplyAndDemand, grid: CellGrid, at now: Timestamp) {
        func rounded(_ value: Double) -> Double { (value * 100_000).rounded() / 100_000 }
        cellSize = grid.cellSize
        generated = now.iso8601
        windowSeconds = Int(DispatchOutcomes.window / 1_000_000)
        cells = demand.cells.map { entry in
            let latitudes = grid.latitudes(ofBand: entry.cell.band)
            let longitudes = grid.longitudes(of: entry.cell)
            return Cell(
                band: entry.cell.band, column: entry.cell.column,
                center: Point(
                    lat: rounded((latitudes.lowerBound + latitudes.upperBound) / 2), lng: rounded((longitudes.lowerBound + longitudes.upperBound) / 2)
                ),
                bounds: Bounds(
                    south: rounded(latitudes.lowerBound), west: rounded(longitudes.lowerBound), north: rounded(latitudes.upperBound),
                    east: rounded(longitudes.upperBound)
                ),
                waiting: entry.waiting, available: entry.available, noDriverLastHour: entry.noDriverLastHour
            )
        }
        withoutPickUp = WithoutPickUp(waiting: demand.waitingWithoutPickUp, noDriverLastHour: demand.noDriverWithoutPickUpLastHour)
    }
}
