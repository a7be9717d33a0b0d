import Foundation
import Hub

/// Users and trips for tests, with every field set to something distinguishable.
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

    static func changes(users: [User] = [], trips: [Trip] = []) -> ChangeSet {
        ChangeSet(
            users: Dictionary(uniqueKeysWithValues: users.map { ($0.id, $0) }),
            trips: Dictionary(uniqueKeysWithValues: trips.map { ($0.id, $0) })
        )
    }
}
