import Foundation
import PropertyBased
import Testing

@testable import Hub

/// Where the geo property tests put drivers and pick-ups: places where a cell scheme is easy to get
/// wrong (poles, the antimeridian, cell edges), ordinary places, and crowded ones.
enum GeoRegion: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case northPole = "around the north pole"
    case southPole = "around the south pole"
    case antimeridian = "on and around the antimeridian"
    case cellEdges = "exactly on cell edges and corners"
    case anywhere = "anywhere"
    case crowded = "crowded: many drivers on the same spots"

    var testDescription: String { rawValue }

    /// `count` points of this region, clustered around one spot of it (cell edges are `grid`'s).
    func points(count: Int, grid: CellGrid, rng: inout any SeededRandomNumberGenerator) -> [GeoPoint] {
        let base = spot(rng: &rng)
        switch self {
        case .northPole, .southPole:
            let sign: Double = self == .northPole ? 1 : -1
            return (0..<count).map { _ in
                // A tenth of them exactly on the pole, at any longitude.
                let lat = Double.random(in: 0..<1, using: &rng) < 0.1 ? 90 : 90 - Double.random(in: 0...0.3, using: &rng)
                return GeoPoint(lat: sign * lat, lng: Self.longitude(rng: &rng))
            }
        case .antimeridian:
            return (0..<count).map { _ in
                let lng: Double =
                    switch Int.random(in: 0..<5, using: &rng) {
                    case 0: 180
                    case 1: -180
                    case 2: 180 - Double.random(in: 0...0.3, using: &rng)
                    default: -180 + Double.random(in: 0...0.3, using: &rng)
                    }
                return GeoPoint(lat: Self.clamped(base.lat + Double.random(in: -0.15...0.15, using: &rng)), lng: lng)
            }
        case .cellEdges:
            return (0..<count).map { _ in Self.edgePoint(near: base, grid: grid, rng: &rng) }
        case .anywhere:
            return (0..<count).map { _ in Self.jittered(base, degrees: 0.2, rng: &rng) }
        case .crowded:
            let spots = (0..<max(1, count / 40)).map { _ in Self.jittered(base, degrees: 0.05, rng: &rng) }
            return (0..<count).map { _ in
                let spot = spots.randomElement(using: &rng)!
                return Double.random(in: 0..<1, using: &rng) < 0.7 ? spot : Self.jittered(spot, degrees: 0.001, rng: &rng)
            }
        }
    }

    /// The spot a region's points cluster around.
    private func spot(rng: inout any SeededRandomNumberGenerator) -> GeoPoint {
        switch self {
        case .northPole: GeoPoint(lat: 90, lng: 0)
        case .southPole: GeoPoint(lat: -90, lng: 0)
        case .antimeridian: GeoPoint(lat: Double.random(in: -85...85, using: &rng), lng: 180)
        case .cellEdges, .anywhere, .crowded:
            // Uniform on the sphere, and now and then close to a pole.
            Double.random(in: 0..<1, using: &rng) < 0.15
                ? GeoPoint(lat: Double.random(in: 88...90, using: &rng) * (Bool.random(using: &rng) ? 1 : -1), lng: Self.longitude(rng: &rng))
                : GeoPoint(lat: asin(Double.random(in: -1...1, using: &rng)) * 180 / .pi, lng: Self.longitude(rng: &rng))
        }
    }

    /// A longitude in [-180, 180], exactly ±180 now and then.
    static func longitude(rng: inout any SeededRandomNumberGenerator) -> Double {
        switch Int.random(in: 0..<20, using: &rng) {
        case 0: 180
        case 1: -180
        default: Double.random(in: -180...180, using: &rng)
        }
    }

    /// `point` moved by up to `degrees` of latitude and as many kilometres eastwards or westwards.
    static func jittered(_ point: GeoPoint, degrees: Double, rng: inout any SeededRandomNumberGenerator) -> GeoPoint {
        let lat = clamped(point.lat + Double.random(in: -degrees...degrees, using: &rng))
        let lngSpan = min(180, degrees / max(cos(lat * .pi / 180), 1e-3))
        return GeoPoint(lat: lat, lng: wrapped(point.lng + Double.random(in: -lngSpan...lngSpan, using: &rng)))
    }

    /// A point on an edge (or corner) of one of the cells within a few cells of `point`, with
    /// coordinates computed from the grid's own band and column edges.
    static func edgePoint(near point: GeoPoint, grid: CellGrid, rng: inout any SeededRandomNumberGenerator) -> GeoPoint {
        let home = grid.cell(containing: point)
        let band = Int32(clamping: min(max(Int(home.band) + Int.random(in: -3...3, using: &rng), 0), Int(grid.bandCount) - 1))
        let latitudes = grid.latitudes(ofBand: band)
        let columns = grid.columnCount(inBand: band)
        let nearColumn = grid.cell(containing: GeoPoint(lat: min(max(point.lat, latitudes.lowerBound), latitudes.upperBound), lng: point.lng)).column
        let column = CellGrid.wrap(Int(nearColumn) + Int.random(in: -3...3, using: &rng), columns)
        let longitudes = grid.longitudes(of: CellID(band: band, column: column))
        let lat = clamped(Bool.random(using: &rng) ? latitudes.lowerBound : latitudes.upperBound)
        let lngOnEdge = wrapped(Bool.random(using: &rng) ? longitudes.lowerBound : longitudes.upperBound)
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: return GeoPoint(lat: lat, lng: lngOnEdge)  // a corner
        case 1: return GeoPoint(lat: lat, lng: wrapped(Double.random(in: longitudes, using: &rng)))  // a southern or northern edge
        default: return GeoPoint(lat: clamped(Double.random(in: latitudes, using: &rng)), lng: lngOnEdge)  // a western or eastern edge
        }
    }

    /// A latitude brought into [-90, 90].
    static func clamped(_ lat: Double) -> Double { min(max(lat, -90), 90) }

    /// A longitude brought into [-180, 180).
    static func wrapped(_ lng: Double) -> Double {
        let turned = (lng + 180).truncatingRemainder(dividingBy: 360)
        return (turned < 0 ? turned + 360 : turned) - 180
    }
}

/// Drivers and pick-ups of one region, with a grid and a policy for each pick-up.
struct DispatchScenario: CustomStringConvertible, Sendable {
    let region: GeoRegion
    let grid: CellGrid
    let drivers: [GeoPoint]
    let searches: [(pickUp: GeoPoint, policy: DispatchPolicy)]

    var description: String {
        "\(drivers.count) drivers \(region.rawValue), \(Int(grid.cellSize)) m cells, \(searches.count) searches"
    }

    static func generator(_ region: GeoRegion) -> Generator<DispatchScenario, Shrink.None<DispatchScenario>> {
        Generator { rng in
            let grid = CellGrid(cellSize: Double.random(in: 400...5_000, using: &rng))
            let drivers = region.points(count: Int.random(in: 100...2_000, using: &rng), grid: grid, rng: &rng)
            // Pick-ups from the same region, some of them exactly where a driver is.
            let pickUps = region.points(count: 10, grid: grid, rng: &rng).map { point in
                Int.random(in: 0..<5, using: &rng) == 0 ? drivers.randomElement(using: &rng)! : point
            }
            let searches = pickUps.map { pickUp in (pickUp: pickUp, policy: randomPolicy(rng: &rng)) }
            return DispatchScenario(region: region, grid: grid, drivers: drivers, searches: searches)
        }
    }

    /// Mostly sensible policies, with an initial radius of 0 or beyond the maximum now and then.
    private static func randomPolicy(rng: inout any SeededRandomNumberGenerator) -> DispatchPolicy {
        let maxRadius = Double.random(in: 0...25_000, using: &rng)
        let initialRadius: Double =
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: 0
            case 1: maxRadius + 1_000
            default: Double.random(in: 0...min(maxRadius, 5_000), using: &rng)
            }
        return DispatchPolicy(initialRadius: initialRadius, maxRadius: maxRadius, driverCount: Int.random(in: 1...30, using: &rng))
    }
}
