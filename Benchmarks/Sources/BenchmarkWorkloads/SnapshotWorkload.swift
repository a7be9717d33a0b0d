import BenchSupport
import Foundation
import Hub

/// What the snapshot benchmarks encode and write: a few hundred users, trips between them with
/// realistic fields, and track points of driven trips. Generated from fixed seeds, so every run
/// writes the same data.
public enum SnapshotWorkload {
    public static let riderCount = 200
    public static let driverCount = 100

    /// Riders get ids `1...riderCount`, drivers the ids after them.
    public static let riderIDs = 1...riderCount
    public static let driverIDs = (riderCount + 1)...(riderCount + driverCount)

    /// The users the trips refer to; write them before any trip.
    public static func users() -> ChangeSet {
        var users: [Int: User] = [:]
        for id in riderIDs.lowerBound...driverIDs.upperBound {
            let isRider = riderIDs.contains(id)
            users[id] = User(
                id: id, username: isRider ? "bench-rider-\(id)" : "bench-driver-\(id)",
                firstName: firstNames[id % firstNames.count], lastName: lastNames[id % lastNames.count],
                group: isRider ? .rider : .driver, photo: isRider ? nil : "photos/bench-driver-\(id).png",
                passwordHash: passwordHash
            )
        }
        return ChangeSet(users: users)
    }

    /// `count` newly requested trips (no driver yet), created over the last hour. `seed` picks
    /// ids and fields; different seeds give different trips.
    public static func requestedTrips(count: Int, seed: UInt64) -> ChangeSet {
        var random = SplitMix64(seed: seed)
        let now = Timestamp.now().microseconds
        var trips: [UUID: Trip] = [:]
        trips.reserveCapacity(count)
        for _ in 0..<count {
            let created = Timestamp(microseconds: now - Int64(random.next() % 3_600_000_000))
            let trip = Trip(
                id: random.uuid(), created: created, updated: created, pickUpAddress: address(&random),
                dropOffAddress: address(&random), status: .requested,
                riderID: riderIDs.lowerBound + Int(random.next() % UInt64(riderCount)), driverID: nil
            )
            trips[trip.id] = trip
        }
        return ChangeSet(trips: trips)
    }

    /// Every trip of `changes` changed as a driver's accept or start would: `status`, a driver, a
    /// later `updated`. Two calls with different statuses or times give sets that differ in every row.
    public static func advanced(_ changes: ChangeSet, to status: TripStatus, at time: Timestamp) -> ChangeSet {
        var trips = changes.trips
        for (id, trip) in changes.trips {
            var changed = trip
            changed.status = status
            changed.updated = time
            changed.driverID = driverIDs.lowerBound + (Int(id.uuid.14) << 8 | Int(id.uuid.15)) % driverCount
            trips[id] = changed
        }
        return ChangeSet(users: changes.users, trips: trips)
    }

    /// `pointsPerTrip` new track points of each of `trips` driven trips, one fix a second in the
    /// city, as a snapshot of a busy second carries them (ascending `seq` per trip).
    public static func trackPoints(trips: Int, pointsPerTrip: Int, seed: UInt64) -> ChangeSet {
        var random = SplitMix64(seed: seed)
        let start = Timestamp.now().microseconds
        var points: [TrackPoint] = []
        points.reserveCapacity(trips * pointsPerTrip)
        for _ in 0..<trips {
            let trip = random.uuid()
            let firstSeq = Int64(1 + random.next() % 500)
            for index in 0..<pointsPerTrip {
                let fix = LocationFix(
                    point: DriverArea.city.randomPoint(using: &random), heading: Double(random.next() % 360),
                    speed: Double(random.next() % 20), accuracy: 5,
                    timestamp: Timestamp(microseconds: start + Int64(index) * 1_000_000)
                )
                points.append(TrackPoint(tripID: trip, seq: firstSeq + Int64(index), fix: fix))
            }
        }
        return ChangeSet(trackPoints: points)
    }

    /// A bcrypt hash's shape and length (the benchmark never logs these users in).
    private static let passwordHash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
    private static let firstNames = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"]
    private static let lastNames = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
    private static let streets = [
        "Main Street", "Piney Road", "Oak Avenue", "Maple Drive", "Cedar Lane", "Elm Street", "Sunset Boulevard",
        "Park Place", "River Road", "Church Street", "Lakeview Terrace", "Highland Avenue",
    ]
    private static let cities = ["Springfield", "Riverton", "Fairview", "Georgetown", "Salem", "Madison"]

    /// `1234 Oak Avenue, Springfield`.
    private static func address(_ random: inout SplitMix64) -> String {
        let number = 1 + random.next() % 9_999
        let street = streets[Int(random.next() % UInt64(streets.count))]
        let city = cities[Int(random.next() % UInt64(cities.count))]
        return "\(number) \(street), \(city)"
    }
}
