import Foundation
import Hub

/// What the benchmark writes: a few hundred users, and trips between them with realistic fields.
/// Generated from a fixed seed, so every run writes the same data.
enum Workload {
    static let riderCount = 200
    static let driverCount = 100

    /// Riders get ids `1...riderCount`, drivers the ids after them.
    static let riderIDs = 1...riderCount
    static let driverIDs = (riderCount + 1)...(riderCount + driverCount)

    /// The users the trips refer to; write them before any trip.
    static func users() -> ChangeSet {
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
    static func requestedTrips(count: Int, seed: UInt64) -> ChangeSet {
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
    static func advanced(_ changes: ChangeSet, to status: TripStatus, at time: Timestamp) -> ChangeSet {
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

/// A small seeded random number generator (SplitMix64), so that workloads are reproducible.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A version 4 UUID drawn from this generator.
    mutating func uuid() -> UUID {
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<2 {
            withUnsafeBytes(of: next()) { word in
                for offset in 0..<8 { bytes[index * 8 + offset] = word[offset] }
            }
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            )
        )
    }
}
