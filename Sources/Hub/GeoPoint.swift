import Foundation

/// A position on the earth in degrees (WGS 84 as GPS reports it).
public struct GeoPoint: Sendable, Hashable, Codable {
    public var lat: Double
    public var lng: Double

    public init(lat: Double, lng: Double) {
        self.lat = lat
        self.lng = lng
    }

    /// Mean earth radius in metres, the sphere every distance here is measured on.
    public static let earthRadius = 6_371_008.8

    /// True for finite coordinates with lat in [-90, 90] and lng in [-180, 180].
    public var isValid: Bool {
        lat.isFinite && lng.isFinite && (-90...90).contains(lat) && (-180...180).contains(lng)
    }

    /// Great-circle distance in metres (haversine; exact enough at every scale dispatch uses).
    public func distance(to other: GeoPoint) -> Double {
        let toRadians = Double.pi / 180
        let dLat = (other.lat - lat) * toRadians
        let dLng = (other.lng - lng) * toRadians
        let a = sin(dLat / 2) * sin(dLat / 2)
            + cos(lat * toRadians) * cos(other.lat * toRadians) * sin(dLng / 2) * sin(dLng / 2)
        return 2 * Self.earthRadius * asin(min(1, a.squareRoot()))
    }
}

/// One GPS fix a driver reported: where, which way, how fast, how sure, and when.
public struct LocationFix: Sendable, Hashable, Codable {
    public var point: GeoPoint
    /// Degrees clockwise from north, [0, 360).
    public var heading: Double?
    /// Metres per second.
    public var speed: Double?
    /// Radius of uncertainty in metres.
    public var accuracy: Double?
    /// When the fix was taken (the client's time stamp, else when the hub received it).
    public var timestamp: Timestamp

    public init(point: GeoPoint, heading: Double? = nil, speed: Double? = nil, accuracy: Double? = nil, timestamp: Timestamp) {
        self.point = point
        self.heading = heading
        self.speed = speed
        self.accuracy = accuracy
        self.timestamp = timestamp
    }
}

/// One point of a trip's recorded track; `seq` is the trip event it was sent with.
public struct TrackPoint: Sendable, Hashable, Codable {
    public let tripID: UUID
    public let seq: Int64
    public let fix: LocationFix

    public init(tripID: UUID, seq: Int64, fix: LocationFix) {
        self.tripID = tripID
        self.seq = seq
        self.fix = fix
    }
}

/// A driver's last known position.
public struct DriverPosition: Sendable, Hashable, Codable {
    public let driverID: Int
    public let fix: LocationFix

    public init(driverID: Int, fix: LocationFix) {
        self.driverID = driverID
        self.fix = fix
    }
}
