import Foundation

/// The built-in city the simulated drivers drive in: a square grid of streets, one intersection
/// every `blockLength` metres, around a fixed centre. No map data is needed; positions are metres
/// east and north of the south-west corner, turned into degrees on a local flat approximation.
struct CityModel: Sendable {
    /// One crossing of two streets, by column (west to east) and row (south to north).
    struct Intersection: Hashable, Sendable {
        let column: Int
        let row: Int
    }

    /// Metres east (`x`) and north (`y`) of the south-west corner.
    struct Position: Sendable, Equatable {
        var x: Double
        var y: Double
    }

    static let center = Coordinates(lat: 52.52, lng: 13.405)
    static let metresPerDegreeLat = 111_320.0

    let blockLength: Double
    /// Blocks along each side; there are `blocks + 1` streets each way.
    let blocks: Int

    /// A city about `side` metres across (at least one block).
    init(side: Double, blockLength: Double = 200) {
        self.blockLength = blockLength
        blocks = max(1, Int((side / blockLength).rounded()))
    }

    /// A city with room for `drivers` at about `density` drivers per square kilometre, at least 1 km across.
    init(drivers: Int, density: Double = 60) {
        self.init(side: max(1_000, (Double(drivers) / density).squareRoot() * 1_000))
    }

    var side: Double { Double(blocks) * blockLength }

    /// Metres north of the city's north edge where requests that no driver can take are placed
    /// (`--unserved-share`): beyond the hub's `dispatchMaxRadius` (default 10 km) as long as that
    /// stays below it, so no driver is ever offered them.
    static let unservedDistance = 100_000.0

    /// Where an unserved request picks up, and its drop-off one block east.
    var unservedPickUp: Position { Position(x: side / 2, y: side + Self.unservedDistance) }
    var unservedDropOff: Position { Position(x: side / 2 + blockLength, y: side + Self.unservedDistance) }

    func position(of intersection: Intersection) -> Position {
        Position(x: Double(intersection.column) * blockLength, y: Double(intersection.row) * blockLength)
    }

    /// Degrees, rounded to 7 decimals (about 1 cm) as a phone would report them.
    func coordinates(of position: Position) -> Coordinates {
        let lat = Self.center.lat + (position.y - side / 2) / Self.metresPerDegreeLat
        let lng = Self.center.lng + (position.x - side / 2) / (Self.metresPerDegreeLat * cos(Self.center.lat * .pi / 180))
        return Coordinates(lat: (lat * 1e7).rounded() / 1e7, lng: (lng * 1e7).rounded() / 1e7)
    }

    func position(of coordinates: Coordinates) -> Position {
        Position(
            x: (coordinates.lng - Self.center.lng) * Self.metresPerDegreeLat * cos(Self.center.lat * .pi / 180) + side / 2,
            y: (coordinates.lat - Self.center.lat) * Self.metresPerDegreeLat + side / 2
        )
    }

    func nearestIntersection(to position: Position) -> Intersection {
        func index(_ metres: Double) -> Int { min(blocks, max(0, Int((metres / blockLength).rounded()))) }
        return Intersection(column: index(position.x), row: index(position.y))
    }

    func randomIntersection(using random: inout some RandomNumberGenerator) -> Intersection {
        Intersection(column: Int.random(in: 0...blocks, using: &random), row: Int.random(in: 0...blocks, using: &random))
    }

    /// An intersection `distance` blocks (Manhattan) from `start`, in a random direction, kept inside the city.
    func intersection(blocksAway distance: Int, from start: Intersection, using random: inout some RandomNumberGenerator) -> Intersection {
        let east = Int.random(in: 0...distance, using: &random)
        let north = distance - east
        func step(_ from: Int, _ by: Int, _ random: inout some RandomNumberGenerator) -> Int {
            let forward = Bool.random(using: &random) ? from + by : from - by
            let backward = forward > from ? from - by : from + by
            return (0...blocks).contains(forward) ? forward : min(blocks, max(0, backward))
        }
        return Intersection(column: step(start.column, east, &random), row: step(start.row, north, &random))
    }

    /// The intersections along the streets from `start` to `end`: east–west first, then north–south.
    func path(from start: Intersection, to end: Intersection) -> [Intersection] {
        var path: [Intersection] = []
        var column = start.column
        while column != end.column {
            column += column < end.column ? 1 : -1
            path.append(Intersection(column: column, row: start.row))
        }
        var row = start.row
        while row != end.row {
            row += row < end.row ? 1 : -1
            path.append(Intersection(column: end.column, row: row))
        }
        return path
    }
}

/// A car on the city's streets: where it is, which way it faces, and the intersections it still
/// has to pass, in order.
struct Vehicle: Sendable {
    private(set) var position: CityModel.Position
    /// Degrees clockwise from north.
    private(set) var heading = 0.0
    private var waypoints: [CityModel.Intersection] = []
    private var next = 0

    init(at intersection: CityModel.Intersection, in city: CityModel) {
        position = city.position(of: intersection)
    }

    /// True when the car has passed every waypoint.
    var hasArrived: Bool { next >= waypoints.count }

    /// Sets a new destination: the car first finishes the block it is on, then takes the streets.
    mutating func drive(to destination: CityModel.Intersection, in city: CityModel) {
        let from = hasArrived ? city.nearestIntersection(to: position) : waypoints[next]
        waypoints = (hasArrived ? [] : [from]) + city.path(from: from, to: destination)
        next = 0
    }

    /// Moves `metres` along the waypoints (stopping at the last one).
    mutating func advance(_ metres: Double, in city: CityModel) {
        var left = metres
        while left > 0, !hasArrived {
            let target = city.position(of: waypoints[next])
            let dx = target.x - position.x
            let dy = target.y - position.y
            let distance = (dx * dx + dy * dy).squareRoot()
            if distance > 0 {
                heading = (atan2(dx, dy) * 180 / .pi + 360).truncatingRemainder(dividingBy: 360)
            }
            if distance <= left {
                position = target
                left -= distance
                next += 1
            } else {
                position.x += dx / distance * left
                position.y += dy / distance * left
                left = 0
            }
        }
    }
}
