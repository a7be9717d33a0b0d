import Hub

/// A driver's GPS fix on its way to the owner of the trip it drives: the one cluster message
/// sent per fix, so it has a fixed binary layout rather than JSON (JSON took about half of a
/// cross-node fix's CPU, docs/benchmarks-history.md). Little-endian: a tag byte, lat, lng, heading, speed,
/// accuracy (IEEE doubles, NaN for none), time stamp (µs), driver id, incarnation, connection
/// (64-bit integers), then the origin node's id as UTF-8.
struct FixMessage: Equatable {
    /// First byte of the layout; JSON messages start with `{`.
    static let tag: UInt8 = 0xF1
    private static let fixedSize = 1 + 8 * 9

    let fix: LocationFix
    let driverID: Int
    let origin: Origin

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = [Self.tag]
        bytes.reserveCapacity(Self.fixedSize + origin.node.utf8.count)
        for value in [fix.point.lat, fix.point.lng, fix.heading ?? .nan, fix.speed ?? .nan, fix.accuracy ?? .nan] {
            Self.append(value.bitPattern, to: &bytes)
        }
        Self.append(UInt64(bitPattern: fix.timestamp.microseconds), to: &bytes)
        Self.append(UInt64(bitPattern: Int64(driverID)), to: &bytes)
        Self.append(origin.incarnation, to: &bytes)
        Self.append(origin.connection, to: &bytes)
        bytes.append(contentsOf: origin.node.utf8)
        return bytes
    }

    /// The message in `bytes`, or nil when they are not one.
    init?(_ bytes: [UInt8]) {
        guard bytes.count > Self.fixedSize, bytes[0] == Self.tag else { return nil }
        var words: [UInt64] = []
        words.reserveCapacity(9)
        for index in 0..<9 {
            var word: UInt64 = 0
            for byte in 0..<8 { word |= UInt64(bytes[1 + index * 8 + byte]) << (8 * UInt64(byte)) }
            words.append(word)
        }
        func optional(_ word: UInt64) -> Double? {
            let value = Double(bitPattern: word)
            return value.isNaN ? nil : value
        }
        fix = LocationFix(
            point: GeoPoint(lat: Double(bitPattern: words[0]), lng: Double(bitPattern: words[1])),
            heading: optional(words[2]), speed: optional(words[3]), accuracy: optional(words[4]),
            timestamp: Timestamp(microseconds: Int64(bitPattern: words[5]))
        )
        driverID = Int(Int64(bitPattern: words[6]))
        origin = Origin(node: String(decoding: bytes[Self.fixedSize...], as: UTF8.self), incarnation: words[7], connection: words[8])
    }

    init(fix: LocationFix, driverID: Int, origin: Origin) {
        self.fix = fix
        self.driverID = driverID
        self.origin = origin
    }

    private static func append(_ word: UInt64, to bytes: inout [UInt8]) {
        for byte in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: word >> (8 * UInt64(byte)))) }
    }
}
