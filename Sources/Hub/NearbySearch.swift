/// How far and for how many drivers the dispatcher searches around a pick-up point.
public struct DispatchPolicy: Sendable, Equatable {
    /// The radius of the first ring of the search, in metres.
    public var initialRadius: Double
    /// No driver farther away than this, in metres, is found.
    public var maxRadius: Double
    /// How many drivers a search returns at most.
    public var driverCount: Int

    public init(initialRadius: Double = 1_000, maxRadius: Double = 10_000, driverCount: Int = 10) {
        self.initialRadius = initialRadius
        self.maxRadius = maxRadius
        self.driverCount = driverCount
    }
}

/// The search for the candidates nearest to a point, over the cells of a `CellGrid`.
public enum NearbySearch {
    /// The `policy.driverCount` candidates nearest to `center` among all those within
    /// `policy.maxRadius` metres of it, each with its distance in metres (`GeoPoint.distance`),
    /// nearest first. Candidates at the same distance keep the order in which they were found:
    /// ring by ring, each ring's new cells band by band from the south, and within a cell the
    /// order `candidatesIn` gave.
    ///
    /// The search looks within `policy.initialRadius` first (0 when negative, `maxRadius` when
    /// larger) and widens the radius by one cell size per ring until it has found `driverCount`
    /// candidates within the radius, or the radius is `maxRadius`. Everything outside the radius is farther
    /// than everything inside, so stopping early returns the same candidates as searching up to
    /// `maxRadius`. Each ring asks only for the cells the previous rings did not cover, and keeps
    /// what they held: `candidatesIn` is called at most once per cell in a search, and may return
    /// candidates of any position (each is measured from its `point`).
    ///
    /// Inlinable, so that it is specialized for the caller's `Candidate` even in another module.
    @inlinable
    public static func nearest<Candidate>(
        to center: GeoPoint,
        policy: DispatchPolicy,
        grid: CellGrid,
        candidatesIn: (CellID) -> [(point: GeoPoint, candidate: Candidate)]
    ) -> [(candidate: Candidate, distance: Double)] {
        guard policy.driverCount > 0, policy.maxRadius >= 0 else { return [] }
        // Every point on the earth is within half a great circle; beyond it a ring adds nothing.
        let largestRadius = min(policy.maxRadius, Double.pi * GeoPoint.earthRadius)
        var radius = min(max(policy.initialRadius, 0), largestRadius)
        // Everything within the maximum radius in the cells visited so far, in the order found.
        var candidates: [Candidate] = []
        var distances: [Double] = []
        var covered: CircleCover?
        while true {
            let cover = grid.cover(ofCircle: radius, around: center)
            cover.forEachCell(notIn: covered) { cell in
                for entry in candidatesIn(cell) {
                    let distance = center.distance(to: entry.point)
                    if distance <= policy.maxRadius {
                        candidates.append(entry.candidate)
                        distances.append(distance)
                    }
                }
            }
            covered = cover
            if radius >= largestRadius { break }
            if count(of: distances, within: radius) >= policy.driverCount { break }
            radius = min(radius + grid.cellSize, largestRadius)
        }
        return nearestIndices(policy.driverCount, of: distances).map { (candidates[$0], distances[$0]) }
    }

    @usableFromInline
    static func count(of distances: [Double], within radius: Double) -> Int {
        distances.count { $0 <= radius }
    }

    /// The indices of the `count` smallest `distances`, smallest first; equal ones by index.
    @usableFromInline
    static func nearestIndices(_ count: Int, of distances: [Double]) -> [Int] {
        // Sorted by (distance, index), at most `count` long. The indices come in ascending order,
        // so a later one only goes before an earlier one when its distance is smaller.
        var nearest: [(distance: Double, index: Int)] = []
        nearest.reserveCapacity(min(count, distances.count))
        for (index, distance) in distances.enumerated() {
            if nearest.count == count {
                guard distance < nearest[count - 1].distance else { continue }
                nearest.removeLast()
            }
            var low = 0
            var high = nearest.count
            while low < high {
                let middle = (low + high) / 2
                if nearest[middle].distance <= distance { low = middle + 1 } else { high = middle }
            }
            nearest.insert((distance, index), at: low)
        }
        return nearest.map(\.index)
    }
}
