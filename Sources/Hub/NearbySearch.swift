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
    /// ring by ring, each ring's new cells in the order of `CellGrid.cells(coveringCircleOf:around:)`,
    /// and within a cell the order `candidatesIn` gave.
    ///
    /// The search looks within `policy.initialRadius` first (taken as `maxRadius` when larger) and
    /// widens the radius by one cell size per ring until it has found `driverCount` candidates
    /// within the radius, or the radius is `maxRadius`. Everything outside the radius is farther
    /// than everything inside, so stopping early returns the same candidates as searching up to
    /// `maxRadius`. Each ring asks only for the cells the previous rings did not cover, and keeps
    /// what they held: `candidatesIn` is called at most once per cell in a search, and may return
    /// candidates of any position (each is measured from its `point`).
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
        var found: [(candidate: Candidate, distance: Double)] = []
        var covered: CircleCover?
        while true {
            let cover = grid.cover(ofCircle: radius, around: center)
            cover.forEachCell(notIn: covered) { cell in
                for entry in candidatesIn(cell) {
                    let distance = center.distance(to: entry.point)
                    if distance <= policy.maxRadius { found.append((entry.candidate, distance)) }
                }
            }
            covered = cover
            if radius >= largestRadius { break }
            let withinRadius = found.count { $0.distance <= radius }
            if withinRadius >= policy.driverCount { break }
            radius = min(radius + grid.cellSize, largestRadius)
        }
        return nearest(policy.driverCount, of: found)
    }

    /// The `count` entries of `found` with the smallest distances, in order; ties in `found`'s order.
    private static func nearest<Candidate>(
        _ count: Int, of found: [(candidate: Candidate, distance: Double)]
    ) -> [(candidate: Candidate, distance: Double)] {
        let order = found.indices.sorted { (found[$0].distance, $0) < (found[$1].distance, $1) }
        return order.prefix(count).map { found[$0] }
    }
}
