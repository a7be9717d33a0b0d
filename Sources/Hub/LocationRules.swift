/// What makes a GPS fix acceptable. Pure functions, so every bound is checked in a table;
/// a fix that fails gets `invalid` and changes nothing.
public enum LocationRules {
    /// Fastest plausible speed in metres per second (360 km/h).
    public static let maxSpeed = 100.0
    /// Largest accepted uncertainty radius in metres.
    public static let maxAccuracy = 100_000.0
    /// How far a client's clock may run ahead of the hub's.
    public static let maxClockAhead: Int64 = 60 * 1_000_000
    /// How old a fix may be when it arrives (a phone that was offline sends a backlog).
    public static let maxAge: Int64 = 24 * 60 * 60 * 1_000_000

    public static func validate(_ point: GeoPoint, field: String) throws(HubError) {
        guard point.lat.isFinite, point.lng.isFinite else {
            throw HubError(.invalid, "\(field): lat and lng must be finite numbers.")
        }
        guard (-90...90).contains(point.lat) else {
            throw HubError(.invalid, "\(field): lat must be between -90 and 90, not \(point.lat).")
        }
        guard (-180...180).contains(point.lng) else {
            throw HubError(.invalid, "\(field): lng must be between -180 and 180, not \(point.lng).")
        }
    }

    /// Checks every field of a fix against the hub's clock `now`.
    public static func validate(_ fix: LocationFix, now: Timestamp = .now()) throws(HubError) {
        try validate(fix.point, field: "location")
        if let heading = fix.heading, !(heading.isFinite && heading >= 0 && heading < 360) {
            throw HubError(.invalid, "heading must be in [0, 360) degrees, not \(heading).")
        }
        if let speed = fix.speed, !(speed.isFinite && speed >= 0 && speed <= maxSpeed) {
            throw HubError(.invalid, "speed must be between 0 and \(Int(maxSpeed)) m/s, not \(speed).")
        }
        if let accuracy = fix.accuracy, !(accuracy.isFinite && accuracy >= 0 && accuracy <= maxAccuracy) {
            throw HubError(.invalid, "accuracy must be between 0 and \(Int(maxAccuracy)) m, not \(accuracy).")
        }
        guard fix.timestamp.microseconds <= now.microseconds + maxClockAhead else {
            throw HubError(.invalid, "timestamp lies more than a minute in the future.")
        }
        guard fix.timestamp.microseconds >= now.microseconds - maxAge else {
            throw HubError(.invalid, "timestamp is more than a day old.")
        }
    }
}
