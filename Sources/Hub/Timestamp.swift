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
    /// `2026-11-24T10:00:00.123456Z`. Written digit by digit: every `trip.location` frame has one.
    public var iso8601: String {
        let seconds = microseconds.quotientAndRemainder(dividingBy: 1_000_000)
        var whole = time_t(seconds.remainder < 0 ? seconds.quotient - 1 : seconds.quotient)
        let fraction = seconds.remainder < 0 ? seconds.remainder + 1_000_000 : seconds.remainder
        var parts = tm()
        gmtime_r(&whole, &parts)
        var text = DecimalText()
        text.append(Int(parts.tm_year) + 1900, width: 4, then: "-")
        text.append(Int(parts.tm_mon) + 1, width: 2, then: "-")
        text.append(Int(parts.tm_mday), width: 2, then: "T")
        text.append(Int(parts.tm_hour), width: 2, then: ":")
        text.append(Int(parts.tm_min), width: 2, then: ":")
        text.append(Int(parts.tm_sec), width: 2, then: ".")
        text.append(Int(fraction), width: 6, then: "Z")
        return text.string
    }
}

/// Builds a short ASCII text from zero-padded decimal numbers and separators.
private struct DecimalText {
    private var utf8: [UInt8] = []

    init() {
        utf8.reserveCapacity(32)
    }

    var string: String { String(decoding: utf8, as: UTF8.self) }

    /// `value` with leading zeros up to `width` digits (a sign counts as one), then `separator`.
    mutating func append(_ value: Int, width: Int, then separator: Unicode.Scalar) {
        var count = 1
        var rest = value.magnitude / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        let length = count + (value < 0 ? 1 : 0)
        utf8.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(0, width - length)))
        if value < 0 { utf8.append(UInt8(ascii: "-")) }
        utf8.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: count))
        rest = value.magnitude
        for position in (utf8.count - count..<utf8.count).reversed() {
            utf8[position] += UInt8(rest % 10)
            rest /= 10
        }
        utf8.append(UInt8(separator.value))
    }
}
