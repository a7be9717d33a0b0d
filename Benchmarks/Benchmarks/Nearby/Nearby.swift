import Benchmark
import BenchmarkWorkloads
import BenchSupport
import Hub

/// The nearest-drivers search of a dispatch: `NearbySearch.nearest` over drivers held by cell, as
/// the dispatcher's driver map holds them, with the hub's default policy (1 km → 10 km, the 10
/// nearest) and 1 km cells. Drivers and pick-ups are spread uniformly over the area; in the city
/// a search finds its drivers within a ring or two, over the world it widens to the maximum
/// radius and finds nearly nobody. One sample is 1,000 searches around different pick-ups.
let benchmarks: @Sendable () -> Void = {
    for (area, drivers) in [(DriverArea.city, 1_000), (.city, 10_000), (.city, 100_000), (.world, 100_000)] {
        let state = SearchState()
        Benchmark(
            "\(area.rawValue)-\(drivers)-drivers", configuration: HotPath.configuration(),
            closure: { benchmark in
                let map = state.map!
                for _ in benchmark.scaledIterations {
                    let pickUp = state.nextPickUp()
                    blackHole(NearbySearch.nearest(to: pickUp, policy: state.policy, grid: state.grid) { map[$0] ?? [] })
                }
            },
            setup: { state.populate(area: area, drivers: drivers) }
        )
    }
}

/// Drivers by cell, and the pick-ups the searches go round.
final class SearchState {
    let grid = CellGrid(cellSize: 1_000)
    let policy = DispatchPolicy(initialRadius: 1_000, maxRadius: 10_000, driverCount: 10)
    /// Each driver is its index.
    private(set) var map: [CellID: [(point: GeoPoint, candidate: Int)]]?
    private var pickUps: [GeoPoint] = []
    private var next = 0

    func populate(area: DriverArea, drivers: Int) {
        var random = SplitMix64(seed: 1 &+ UInt64(drivers))
        var map: [CellID: [(point: GeoPoint, candidate: Int)]] = [:]
        for index in 0..<drivers {
            let point = area.randomPoint(using: &random)
            map[grid.cell(containing: point), default: []].append((point, index))
        }
        self.map = map
        pickUps = (0..<4_096).map { _ in area.randomPoint(using: &random) }
    }

    func nextPickUp() -> GeoPoint {
        next = (next + 1) & (pickUps.count - 1)
        return pickUps[next]
    }
}
