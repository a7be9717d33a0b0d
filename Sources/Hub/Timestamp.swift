import Foundation

/// A point in time with microsecond precision, the precision of the reference app's
/// time stamps; stored as an integer so it round-trips through every store exactly.
public struct Timestamp: Sendable, Hashable, Comparable, Codable {
    /// Microseconds since 1970-01-01T00:00:00Z.
    public let microseconds: Int64

    public init(microseconds: Int64) {
        self.microseconds = microseconds
    }

    /// The current wall-clock time.
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(microseconds: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1_000)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.microseconds < rhs.microseconds
    }

    /// ISO 8601 in UTC with six fractional digits, as Django REST Framework writes it:
    /// `2026-11-24T10:00:00.123456Z`.
    public var iso8601: String {
        let seconds = microseconds.quotientAndRemainder(dividingBy: 1_000_000)
        var whole = time_t(seconds.remainder < 0 ? seconds.quotient - 1 : seconds.quotient)
        let fraction = seconds.remainder < 0 ? seconds.remainder + 1_000_000 : seconds.remainder
        var parts = tm()
        gmtime_r(&whole, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let micro = String(fraction)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: 6 - micro.count) + micro + "Z"
    }
}
