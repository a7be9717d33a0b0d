@testable import Cluster
import Hub
import Testing
import TestSupport

/// The binary layout a driver's fix crosses the cluster in.
@Suite("Cluster fix messages", MachineLoad.shared)
struct FixMessageTests {
    static let origin = Origin(node: "node-12", incarnation: .max - 3, connection: 1 << 40 | 7)

    @Test("a fix comes back exactly, with and without its optional fields")
    func roundTrip() throws {
        let fixes = [
            LocationFix(point: GeoPoint(lat: -33.8688, lng: 151.2093), heading: 359.5, speed: 0, accuracy: 4.25, timestamp: Timestamp(microseconds: 1_796_000_000_123_456)),
            LocationFix(point: GeoPoint(lat: 90, lng: -180), timestamp: Timestamp(microseconds: -1)),
        ]
        for (index, fix) in fixes.enumerated() {
            let message = FixMessage(fix: fix, driverID: 42 + index, origin: Self.origin)
            let decoded = try #require(FixMessage(message.encoded()))
            #expect(decoded == message)
        }
    }

    @Test("bytes that are not a fix message decode to nothing")
    func refusesOtherBytes() {
        let encoded = FixMessage(fix: LocationFix(point: GeoPoint(lat: 1, lng: 2), timestamp: Timestamp(microseconds: 3)), driverID: 4, origin: Self.origin).encoded()
        #expect(FixMessage(Array(encoded.prefix(20))) == nil)
        #expect(FixMessage(Array("{\"update\":{}}".utf8)) == nil)
        #expect(FixMessage([]) == nil)
        var wrongTag = encoded
        wrongTag[0] = UInt8(ascii: "{")
        #expect(FixMessage(wrongTag) == nil)
    }
}
