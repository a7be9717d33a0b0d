import Foundation
import PropertyBased
import Testing

@testable import Hub
import TestSupport

@Suite("CellGrid: near-square cells everywhere, and the cells a circle covers", MachineLoad.shared)
struct CellGridTests {
    /// A circle around a point of a region, and points in or near it.
    struct CircleCase: CustomStringConvertible, Sendable {
        let grid: CellGrid
        let center: GeoPoint
        let radius: Double
        let points: [GeoPoint]

        var description: String {
            "\(Int(grid.cellSize)) m cells, \(radius) m around \(center), \(points.count) points"
        }

        static func generator(_ region: GeoRegion) -> Generator<CircleCase, Shrink.None<CircleCase>> {
            Generator { rng in
                // Now and then a circle of up to half the earth, on cells large enough to list them all.
                let isHuge = Int.random(in: 0..<10, using: &rng) == 0
                let grid = CellGrid(cellSize: exp(Double.random(in: log(isHuge ? 200_000 : 200)...log(isHuge ? 1_000_000 : 100_000), using: &rng)))
                let center = region.points(count: 1, grid: grid, rng: &rng)[0]
                let radius =
                    switch Int.random(in: 0..<10, using: &rng) {
                    case 0: 0.0
                    case _ where isHuge: Double.random(in: 0...Double.pi * GeoPoint.earthRadius * 1.1, using: &rng)
                    default: Double.random(in: 0...40 * grid.cellSize, using: &rng)
                    }
                // Points of the same region, and points spread over the circle, most of them near its rim.
                let spread = (0..<300).map { _ in
                    let distance = radius * (1 - pow(Double.random(in: 0...1, using: &rng), 4))
                    return destination(from: center, distance: distance, bearing: Double.random(in: 0..<2 * .pi, using: &rng))
                }
                return CircleCase(grid: grid, center: center, radius: radius, points: region.points(count: 300, grid: grid, rng: &rng) + spread)
            }
        }
    }

    /// The point `distance` metres from `start` along the great circle leaving it at `bearing` radians.
    static func destination(from start: GeoPoint, distance: Double, bearing: Double) -> GeoPoint {
        let angle = distance / GeoPoint.earthRadius
        let lat = start.lat * .pi / 180
        let endLat = asin(min(1, max(-1, sin(lat) * cos(angle) + cos(lat) * sin(angle) * cos(bearing))))
        let lngChange = atan2(sin(bearing) * sin(angle) * cos(lat), cos(angle) - sin(lat) * sin(endLat))
        return GeoPoint(lat: GeoRegion.clamped(endLat * 180 / .pi), lng: GeoRegion.wrapped(start.lng + lngChange * 180 / .pi))
    }

    static func isValid(_ cell: CellID, on grid: CellGrid) -> Bool {
        (0..<grid.bandCount).contains(cell.band) && (0..<grid.columnCount(inBand: cell.band)).contains(cell.column)
    }

    @Test("every point within the radius is in one of the covering cells, each listed once", arguments: GeoRegion.allCases)
    func coveringCells(region: GeoRegion) async {
        await propertyCheck(count: 40, input: CircleCase.generator(region)) { circle in
            let cells = circle.grid.cells(coveringCircleOf: circle.radius, around: circle.center)
            let cellSet = Set(cells)
            #expect(cellSet.count == cells.count, "duplicate cells")
            #expect(cells.allSatisfy { Self.isValid($0, on: circle.grid) })
            #expect(cellSet.contains(circle.grid.cell(containing: circle.center)))
            let leftOut = circle.points.filter { point in
                circle.center.distance(to: point) <= circle.radius && !cellSet.contains(circle.grid.cell(containing: point))
            }
            #expect(leftOut.isEmpty, "points within the radius but in none of the cells")
        }
    }

    @Test("a point lies within the bounds of its cell", arguments: GeoRegion.allCases)
    func containingCell(region: GeoRegion) async {
        let gridAndPoints = Generator { rng in
            let grid = CellGrid(cellSize: exp(Double.random(in: log(200)...log(100_000), using: &rng)))
            return (grid, region.points(count: 200, grid: grid, rng: &rng))
        }
        await propertyCheck(count: 20, input: gridAndPoints) { grid, points in
            let outside = points.filter { point in
                let cell = grid.cell(containing: point)
                guard Self.isValid(cell, on: grid) else { return true }
                let tolerance = 1e-9
                let latitudes = grid.latitudes(ofBand: cell.band)
                let longitudes = grid.longitudes(of: cell)
                // 180° is the same meridian as −180°, the western edge of column 0.
                let lng = point.lng == 180 ? -180 : point.lng
                return !(latitudes.lowerBound - tolerance...latitudes.upperBound + tolerance).contains(point.lat)
                    || !(longitudes.lowerBound - tolerance...longitudes.upperBound + tolerance).contains(lng)
            }
            #expect(outside.isEmpty, "points outside the bounds of their cell")
        }
    }

    @Test("the poles and both sides of the antimeridian map to valid cells; 180° and −180° are one meridian")
    func extremes() {
        for cellSize in [1.0, 200, 1_000, 33_333, 1e9] {
            let grid = CellGrid(cellSize: cellSize)
            for lat in [-90.0, -89.999_999, -45, 0, 45, 89.999_999, 90] {
                let east = grid.cell(containing: GeoPoint(lat: lat, lng: 180))
                let west = grid.cell(containing: GeoPoint(lat: lat, lng: -180))
                #expect(Self.isValid(east, on: grid) && Self.isValid(west, on: grid))
                #expect(east == west, "lat \(lat), \(cellSize) m cells")
                #expect(east.column == 0)
            }
            #expect(grid.cell(containing: GeoPoint(lat: 90, lng: 0)).band == grid.bandCount - 1)
            #expect(grid.cell(containing: GeoPoint(lat: -90, lng: 0)).band == 0)
            let onPole = grid.cells(coveringCircleOf: 0, around: GeoPoint(lat: 90, lng: 123))
            #expect(onPole.count == Int(grid.columnCount(inBand: grid.bandCount - 1)), "a circle on the pole covers the whole polar band")
        }
    }

    @Test("1,000 m cells: 20,015 bands, 40,030 columns at the equator, three wedges at each pole")
    func defaultGrid() {
        let grid = CellGrid()
        #expect(grid.bandCount == 20_015)
        #expect(grid.columnCount(inBand: grid.bandCount / 2) == 40_030)
        #expect(grid.columnCount(inBand: 0) == 3)
        #expect(grid.columnCount(inBand: grid.bandCount - 1) == 3)
    }

    @Test("cells are square within 1 % up to 80° of latitude, and never more than twice as wide as high")
    func nearSquare() {
        for cellSize in [200.0, 1_000, 5_000, 20_000, 50_000] {
            let grid = CellGrid(cellSize: cellSize)
            let height = Double.pi * GeoPoint.earthRadius / Double(grid.bandCount)
            #expect(abs(height / cellSize - 1) < 0.01)
            let notSquare = (0..<grid.bandCount).filter { band in
                let latitudes = grid.latitudes(ofBand: band)
                let middle = (latitudes.lowerBound + latitudes.upperBound) / 2
                let width = 2 * Double.pi * GeoPoint.earthRadius * cos(middle * .pi / 180) / Double(grid.columnCount(inBand: band))
                let ratio = width / height
                return abs(middle) <= 80 ? abs(ratio - 1) >= 0.01 : !(ratio > 0.99 && ratio < 2)
            }
            #expect(notSquare.isEmpty, "bands of \(cellSize) m cells whose cells are not near-square")
        }
    }
}
