import Foundation
import Hub

/// Users, trips, GPS fixes and tricky texts for tests, with every field set to something distinguishable.
public enum Samples {
    /// Texts that break naive quoting or escaping in SQL, COPY or array literals.
    public static let trickyTexts = [
        "plain", "", " ", "O'Brien", "\"double\"", "''", "'; DROP TABLE notes; --", "Robert'); DROP TABLE notes;--",
        "back\\slash", "\\N", "\\", "ends with \\", "tab\there", "new\nline", "carriage\rreturn", "\r\n", "\t\t",
        "东京 🚕 zoë Łódź", "emoji 👩‍👩‍👧", "$1", "$$ dollar $$", "NULL", "null", "{a,b}", "\"{}\"", "%s %d", "a,b",
        "100%", "--", "/* comment */", "x\u{7F}y", "\u{1}\u{2}control", String(repeating: "long ", count: 2_000),
    ]

    public static let now = Timestamp(microseconds: 1_764_000_000_123_456)

    public static func user(_ id: Int, group: UserGroup = .rider, photo: String? = nil) -> User {
        User(
            id: id, username: "user\(id)", firstName: "First \(id)", lastName: "Last \(id)", group: group,
            photo: photo, passwordHash: "$2b$12$hash\(id)"
        )
    }

    public static func trip(
        _ status: TripStatus = .requested, rider: Int? = 1, driver: Int? = nil, created: Timestamp = now,
        id: UUID = UUID()
    ) -> Trip {
        Trip(
            id: id, created: created, updated: Timestamp(microseconds: created.microseconds + 1), pickUpAddress: "A",
            dropOffAddress: "B", status: status, riderID: rider, driverID: driver
        )
    }

    /// A fix with every optional set, `index` making it distinct.
    public static func fix(_ index: Int = 0) -> LocationFix {
        LocationFix(
            point: GeoPoint(lat: 47.376_887_1 + Double(index) * 1e-5, lng: 8.541_694_3 - Double(index) * 1e-5),
            heading: Double(index % 360) + 0.5, speed: 13.9, accuracy: 4.25,
            timestamp: Timestamp(microseconds: now.microseconds + Int64(index) * 1_000_001)
        )
    }

    /// Points `seqs` of the track of trip `tripID`.
    public static func track(_ tripID: UUID, seqs: some Sequence<Int64>) -> [TrackPoint] {
        seqs.map { TrackPoint(tripID: tripID, seq: $0, fix: fix(Int($0))) }
    }

    public static func changes(
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
