import PropertyBased
import Testing

@testable import Hub
import TestSupport

@Suite("NearbySearch: the nearest drivers around a pick-up, ring by ring", MachineLoad.shared)
struct NearbySearchTests {
    /// Drivers by cell, as a driver map would hold them; each driver is its index in `drivers`.
    static func cells(of drivers: [GeoPoint], on grid: CellGrid) -> [CellID: [(point: GeoPoint, candidate: Int)]] {
        var cells: [CellID: [(point: GeoPoint, candidate: Int)]] = [:]
        for (index, point) in drivers.enumerated() {
            cells[grid.cell(containing: point), default: []].append((point, index))
        }
        return cells
    }

    @Test("finds the same drivers as sorting every driver within the maximum radius", arguments: GeoRegion.allCases)
    func matchesBruteForce(region: GeoRegion) async {
        await propertyCheck(count: 30, input: DispatchScenario.generator(region)) { scenario in
            let cells = Self.cells(of: scenario.drivers, on: scenario.grid)
            for (pickUp, policy) in scenario.searches {
                var asked: [CellID: Int] = [:]
                let result = NearbySearch.nearest(to: pickUp, policy: policy, grid: scenario.grid) { cell in
                    asked[cell, default: 0] += 1
                    return cells[cell] ?? []
                }
                let context: Comment = "pick-up \(pickUp), \(policy)"

                let distances = scenario.drivers.map { pickUp.distance(to: $0) }
                let expected = distances.indices.filter { distances[$0] <= policy.maxRadius }
                    .sorted { (distances[$0], $0) < (distances[$1], $1) }
                    .prefix(policy.driverCount)
                #expect(result.map(\.distance) == expected.map { distances[$0] }, context)
                #expect(result.allSatisfy { $0.distance == distances[$0.candidate] }, context)
                #expect(Set(result.map(\.candidate)).count == result.count, context)
                // Ties at the farthest distance returned may be broken either way; closer ones may not.
                if let farthest = result.last?.distance {
                    #expect(
                        Set(result.filter { $0.distance < farthest }.map(\.candidate))
                            == Set(expected.filter { distances[$0] < farthest }), context
                    )
                }

                #expect(asked.values.allSatisfy { $0 == 1 }, "a cell was asked for twice; \(context)")
                let lastRing = Self.lastRingRadius(policy: policy, cellSize: scenario.grid.cellSize, distances: distances)
                let lastCover = Set(scenario.grid.cells(coveringCircleOf: lastRing, around: pickUp))
                #expect(lastCover.subtracting(asked.keys).isEmpty, "cells of the \(lastRing) m ring not asked for; \(context)")
                #expect(Set(asked.keys).subtracting(lastCover).isEmpty, "cells beyond the \(lastRing) m ring asked for; \(context)")
            }
        }
    }

    /// The radius at which the documented widening stops: the first ring that holds `driverCount`
    /// drivers, or the maximum radius.
    static func lastRingRadius(policy: DispatchPolicy, cellSize: Double, distances: [Double]) -> Double {
        var radius = min(max(policy.initialRadius, 0), policy.maxRadius)
        while radius < policy.maxRadius, distances.count(where: { $0 <= radius }) < policy.driverCount {
            radius = min(radius + cellSize, policy.maxRadius)
        }
        return radius
    }

    @Test("stops widening once a ring holds enough drivers, and never offers one beyond the maximum radius")
    func widening() {
        let grid = CellGrid()
        let pickUp = GeoPoint(lat: 52.520_008, lng: 13.404_954)  // Berlin, Alexanderplatz
        // Drivers due north of the pick-up, 1 m of distance for every 1/(111 195 m) degree.
        let metresPerDegree = GeoPoint.earthRadius * .pi / 180
        let drivers = [400.0, 1_500, 2_600, 12_000].map { GeoPoint(lat: pickUp.lat + $0 / metresPerDegree, lng: pickUp.lng) }
        let cells = Self.cells(of: drivers, on: grid)

        func search(_ policy: DispatchPolicy) -> (drivers: [Int], asked: Set<CellID>) {
            var asked: Set<CellID> = []
            let result = NearbySearch.nearest(to: pickUp, policy: policy, grid: grid) { cell in
                asked.insert(cell)
                return cells[cell] ?? []
            }
            return (result.map(\.candidate), asked)
        }

        let one = search(DispatchPolicy(initialRadius: 1_000, maxRadius: 10_000, driverCount: 1))
        #expect(one.drivers == [0])
        #expect(one.asked == Set(grid.cells(coveringCircleOf: 1_000, around: pickUp)))

        let two = search(DispatchPolicy(initialRadius: 1_000, maxRadius: 10_000, driverCount: 2))
        #expect(two.drivers == [0, 1])
        #expect(two.asked == Set(grid.cells(coveringCircleOf: 2_000, around: pickUp)))

        let all = search(DispatchPolicy())
        #expect(all.drivers == [0, 1, 2])
        #expect(all.asked == Set(grid.cells(coveringCircleOf: 10_000, around: pickUp)))

        let none = search(DispatchPolicy(driverCount: 0))
        #expect(none.drivers.isEmpty && none.asked.isEmpty)
    }

    @Test("drivers at the same distance keep the order their cell gave them in")
    func ties() {
        let grid = CellGrid()
        let taxiRank = GeoPoint(lat: -33.868_820, lng: 151.209_296)
        let pickUp = GeoPoint(lat: taxiRank.lat + 0.001, lng: taxiRank.lng)
        let drivers = [GeoPoint(lat: taxiRank.lat + 0.003, lng: taxiRank.lng)] + Array(repeating: taxiRank, count: 5)
        let cells = Self.cells(of: drivers, on: grid)
        let result = NearbySearch.nearest(to: pickUp, policy: DispatchPolicy(driverCount: 3), grid: grid) { cells[$0] ?? [] }
        #expect(result.map(\.candidate) == [1, 2, 3])
        #expect(Set(result.map(\.distance)).count == 1)
    }
}
