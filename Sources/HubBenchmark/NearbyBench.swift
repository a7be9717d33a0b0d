import ArgumentParser
import BenchSupport
import Histogram
import Hub

/// `hub-bench nearby`: the time of one `NearbySearch.nearest` over drivers held by cell, as the
/// dispatcher's driver map holds them, for several driver counts, areas and policies.
struct NearbyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nearby",
        abstract: "Time the nearest-drivers search around pick-up points.",
        discussion: """
            Drivers are spread uniformly over each area; pick-ups are drawn the same way. Every \
            search is timed on its own. Results go to stdout as a Markdown table; progress to stderr.
            """
    )

    @Option(help: "Driver counts, comma-separated (default: 1000,10000,100000).", transform: Parse.integers)
    var drivers: [Int] = [1_000, 10_000, 100_000]

    @Option(help: "Areas to spread drivers and pick-ups over, comma-separated: city (\(DriverArea.cityDescription)), world (default: both).", transform: Parse.areas)
    var areas: [DriverArea] = [.city, .world]

    @Option(
        help: "Policies as initialRadius:maxRadius:driverCount (metres, metres, drivers), comma-separated (default: 1000:10000:10,500:5000:3,2000:20000:25).",
        transform: Parse.policies
    )
    var policies: [DispatchPolicy] = [
        DispatchPolicy(initialRadius: 1_000, maxRadius: 10_000, driverCount: 10),
        DispatchPolicy(initialRadius: 500, maxRadius: 5_000, driverCount: 3),
        DispatchPolicy(initialRadius: 2_000, maxRadius: 20_000, driverCount: 25),
    ]

    @Option(help: "Cell size of the grid, in metres.")
    var cellSize = 1_000.0

    @Option(help: "Timed searches per area, driver count and policy.")
    var searches = 20_000

    @Option(help: "Untimed searches before the timed ones, per area, driver count and policy.")
    var warmup = 2_000

    @Option(help: "Seed of the random drivers and pick-ups.")
    var seed: UInt64 = 1

    func validate() throws {
        guard !drivers.isEmpty, drivers.allSatisfy({ $0 > 0 }) else { throw ValidationError("--drivers must be positive.") }
        guard searches > 0, warmup >= 0 else { throw ValidationError("--searches must be positive, --warmup not negative.") }
        guard cellSize >= 1, cellSize.isFinite else { throw ValidationError("--cell-size must be at least 1 m.") }
    }

    func run() {
        let grid = CellGrid(cellSize: cellSize)
        var rows: [NearbyRow] = []
        for area in areas {
            for driverCount in drivers {
                var random = SplitMix64(seed: seed &+ UInt64(driverCount))
                let map = CellMap(points: (0..<driverCount).map { _ in area.randomPoint(using: &random) }, grid: grid)
                let pickUps = (0..<searches + warmup).map { _ in area.randomPoint(using: &random) }
                for policy in policies {
                    let row = measure(map: map, pickUps: pickUps, policy: policy, grid: grid, area: area)
                    progress.log(
                        "\(area.rawValue), \(Format.count(driverCount)) drivers, \(Format.policy(policy)): "
                            + "median \(Format.microseconds(row.median)) µs, p99 \(Format.microseconds(row.p99)) µs"
                    )
                    rows.append(row)
                }
            }
        }
        print(NearbyRow.markdown(rows, grid: grid, searches: searches))
    }

    private func measure(map: CellMap, pickUps: [GeoPoint], policy: DispatchPolicy, grid: CellGrid, area: DriverArea) -> NearbyRow {
        var histogram = Histogram<UInt64>(highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .three)
        var cellsAsked = 0
        func search(_ pickUp: GeoPoint) -> Int {
            NearbySearch.nearest(to: pickUp, policy: policy, grid: grid) { cell in
                cellsAsked += 1
                return map.cells[cell] ?? []
            }.count
        }
        for pickUp in pickUps.prefix(warmup) { _ = search(pickUp) }
        cellsAsked = 0
        var driversFound = 0
        for pickUp in pickUps.dropFirst(warmup) {
            let start = MonotonicClock.nanoseconds()
            let found = search(pickUp)
            _ = histogram.record(MonotonicClock.nanoseconds() - start)
            driversFound += found
        }
        return NearbyRow(
            area: area, drivers: map.count, policy: policy, histogram: histogram,
            meanCellsAsked: Double(cellsAsked) / Double(histogram.totalCount),
            meanDriversFound: Double(driversFound) / Double(histogram.totalCount)
        )
    }
}

/// Drivers by cell, as the dispatcher's driver map holds them; each driver is its index.
struct CellMap {
    let cells: [CellID: [(point: GeoPoint, candidate: Int)]]
    let count: Int

    init(points: [GeoPoint], grid: CellGrid) {
        var cells: [CellID: [(point: GeoPoint, candidate: Int)]] = [:]
        for (index, point) in points.enumerated() {
            cells[grid.cell(containing: point), default: []].append((point, index))
        }
        self.cells = cells
        count = points.count
    }
}
