import Foundation
import Hub

/// Users, trips and GPS fixes for tests, with every field set to something distinguishable.
enum Samples {
    static let now = Timestamp(microseconds: 1_764_000_000_123_456)

    static func user(_ id: Int, group: UserGroup = .rider, photo: String? = nil) -> User {
        User(
            id: id, username: "user\(id)", firstName: "First \(id)", lastName: "Last \(id)", group: group,
            photo: photo, passwordHash: "$2b$12$hash\(id)"
        )
    }

    static func trip(
        _ status: TripStatus = .requested, rider: Int? = 1, driver: Int? = nil, created: Timestamp = now,
        id: UUID = UUID()
    ) -> Trip {
        Trip(
            id: id, created: created, updated: Timestamp(microseconds: created.microseconds + 1), pickUpAddress: "A",
            dropOffAddress: "B", status: status, riderID: rider, driverID: driver
        )
    }

    /// A fix with every optional set, `index` making it distinct.
    static func fix(_ index: Int = 0) -> LocationFix {
        LocationFix(
            point: GeoPoint(lat: 47.376_887_1 + Double(index) * 1e-5, lng: 8.541_694_3 - Double(index) * 1e-5),
            heading: Double(index % 360) + 0.5, speed: 13.9, accuracy: 4.25,
            timestamp: Timestamp(microseconds: now.microseconds + Int64(index) * 1_000_001)
        )
    }

    /// Points `seqs` of the track of trip `tripID`.
    static func track(_ tripID: UUID, seqs: some Sequence<Int64>) -> [TrackPoint] {
        seqs.map { TrackPoint(tripID: tripID, seq: $0, fix: fix(Int($0))) }
    }

    static func changes(
        users: [User] = [], trips: [Trip] = [], positions: [DriverPosition] = [], trackPoints: [TrackPoint] = []
    ) -> ChangeSet {
        ChangeSet(
            users: Dictionary(uniqueKeysWithValues: users.map { ($0.id, $0) }),
            trips: Dictionary(uniqueKeysWithValues: trips.map { ($0.id, $0) }),
            driverPositions: Dictionary(uniqueKeysWithValues: positions.map { ($0.driverID, $0) }),
            trackPoints: trackPoints
        )
    }
}
