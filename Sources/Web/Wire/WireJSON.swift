import Foundation
import Hub

/// The reference app's user JSON: `{"id","username","first_name","last_name","group","photo"}`.
struct UserJSON: Encodable {
    let user: User

    enum CodingKeys: String, CodingKey {
        case id, username, group, photo
        case firstName = "first_name"
        case lastName = "last_name"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(user.id, forKey: .id)
        try container.encode(user.username, forKey: .username)
        try container.encode(user.firstName, forKey: .firstName)
        try container.encode(user.lastName, forKey: .lastName)
        try container.encode(user.group.rawValue, forKey: .group)
        try container.encode(MediaPath.url(for: user.photo), forKey: .photo)
    }
}

/// The reference app's nested trip JSON, with `rider` and `driver` as user objects or null.
struct TripJSON: Encodable {
    let view: TripView

    enum CodingKeys: String, CodingKey {
        case id, created, updated, status, driver, rider
        case pickUpAddress = "pick_up_address"
        case dropOffAddress = "drop_off_address"
        case pickUpLocation = "pick_up_location"
        case dropOffLocation = "drop_off_location"
        case cancelReason = "cancel_reason"
    }

    func encode(to encoder: any Encoder) throws {
        let trip = view.trip
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(trip.id.lowercasedText, forKey: .id)
        try container.encode(trip.created.iso8601, forKey: .created)
        try container.encode(trip.updated.iso8601, forKey: .updated)
        try container.encode(trip.pickUpAddress, forKey: .pickUpAddress)
        try container.encode(trip.dropOffAddress, forKey: .dropOffAddress)
        try container.encode(trip.status.rawValue, forKey: .status)
        try container.encode(view.driver.map(UserJSON.init), forKey: .driver)
        try container.encode(view.rider.map(UserJSON.init), forKey: .rider)
        // Extensions: present only when the rider sent coordinates, so reference trips keep their shape.
        try container.encodeIfPresent(trip.pickUpLocation.map(PointJSON.init), forKey: .pickUpLocation)
        try container.encodeIfPresent(trip.dropOffLocation.map(PointJSON.init), forKey: .dropOffLocation)
        // Present only on a CANCELED trip whose reason is known: rider_canceled or no_driver_found.
        try container.encodeIfPresent(trip.cancelReason?.rawValue, forKey: .cancelReason)
    }
}

/// `{"lat", "lng"}`.
struct PointJSON: Encodable {
    let lat: Double
    let lng: Double

    init(_ point: GeoPoint) {
        lat = point.lat
        lng = point.lng
    }
}

/// One GPS fix: `{"lat","lng","heading","speed","accuracy","timestamp","seq"}` (absent values are null).
struct FixJSON: Encodable {
    let fix: LocationFix
    let seq: Int64

    enum CodingKeys: String, CodingKey {
        case lat, lng, heading, speed, accuracy, timestamp, seq
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(fix.point.lat, forKey: .lat)
        try container.encode(fix.point.lng, forKey: .lng)
        try container.encode(fix.heading, forKey: .heading)
        try container.encode(fix.speed, forKey: .speed)
        try container.encode(fix.accuracy, forKey: .accuracy)
        try container.encode(fix.timestamp.iso8601, forKey: .timestamp)
        try container.encode(seq, forKey: .seq)
    }
}

/// The data of `trip.location`: the fix plus `trip_id` and `driver_id`.
struct TripLocationJSON: Encodable {
    let location: TripLocation

    enum CodingKeys: String, CodingKey {
        case tripID = "trip_id"
        case driverID = "driver_id"
        case pickUpDistance = "pickup_distance"
        case pickUpETA = "pickup_eta"
    }

    func encode(to encoder: any Encoder) throws {
        try FixJSON(fix: location.fix, seq: location.seq).encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(location.tripID.lowercasedText, forKey: .tripID)
        try container.encode(location.driverID, forKey: .driverID)
        // While the trip is STARTED with a pick-up point: whole metres and seconds to it.
        try container.encodeIfPresent(location.pickUp.map { Int($0.distance.rounded()) }, forKey: .pickUpDistance)
        try container.encodeIfPresent(location.pickUp?.eta, forKey: .pickUpETA)
    }
}

/// `GET /api/trip/<id>/track/`: `{"trip_id", "points": [fix, ...]}`, ascending `seq`.
struct TrackJSON: Encodable {
    let tripID: UUID
    let points: [TrackPoint]

    enum CodingKeys: String, CodingKey {
        case tripID = "trip_id"
        case points
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tripID.lowercasedText, forKey: .tripID)
        try container.encode(points.map { FixJSON(fix: $0.fix, seq: $0.seq) }, forKey: .points)
    }
}

/// Where uploaded files are served from.
enum MediaPath {
    static let urlPrefix = "/media/"

    static func url(for storedPath: String?) -> String? {
        storedPath.map { urlPrefix + $0 }
    }
}

/// One shared encoder configuration for every JSON the hub writes.
enum WireEncoding {
    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        // Every type encoded here is made of strings, integers and nulls: encoding cannot fail.
        guard let data = try? encoder.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}
