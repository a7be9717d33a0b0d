import Foundation
import Testing

@testable import Hub
import TestSupport

/// The hand-written formatters of ids and time stamps against Foundation's.
@Suite("Text of ids and time stamps: the same as Foundation writes, without its formatting cost", MachineLoad.shared)
struct TextFormatTests {
    @Test("a UUID's text is Foundation's uuidString in lowercase, for random and extreme ids")
    func uuidText() throws {
        var generator = SystemRandomNumberGenerator()
        var ids = [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))]
        ids.append(try #require(UUID(uuidString: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF")))
        ids.append(try #require(UUID(uuidString: "0123456789ABCDEF0123456789abcdef".chunked())))
        for _ in 0..<2_000 {
            var bytes = [UInt8](repeating: 0, count: 16)
            for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
            ids.append(bytes.withUnsafeBytes { UUID(uuid: $0.load(as: uuid_t.self)) })
        }
        for id in ids {
            #expect(id.lowercasedText == id.uuidString.lowercased())
            #expect(UUID(uuidString: id.lowercasedText) == id)
        }
    }

    @Test("iso8601 matches a DateFormatter in UTC plus six fractional digits, before and after 1970")
    func iso8601() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        var generator = SystemRandomNumberGenerator()
        // Year 1600 (DateFormatter turns Julian before 1582) to 9999, and the edges around 1970.
        var samples: [Int64] = [0, -1, 1, 999_999, -999_999, 1_000_000, -1_000_000, 1_764_000_000_123_456]
        for _ in 0..<2_000 {
            samples.append(Int64.random(in: -11_676_096_000_000_000...253_402_300_799_999_999, using: &generator))
        }
        for microseconds in samples {
            let (seconds, fraction) = microseconds.quotientAndRemainder(dividingBy: 1_000_000)
            let wholeSeconds = fraction < 0 ? seconds - 1 : seconds
            let micro = fraction < 0 ? fraction + 1_000_000 : fraction
            let date = Date(timeIntervalSince1970: TimeInterval(wholeSeconds))
            let expected = formatter.string(from: date) + "." + String(format: "%06lld", micro) + "Z"
            #expect(Timestamp(microseconds: microseconds).iso8601 == expected, "\(microseconds)")
        }
    }

    @Test("years outside 0000–9999 keep every digit and the sign")
    func unusualYears() {
        // 10000-01-01T00:00:00Z and one microsecond before 0000-01-01T00:00:00Z.
        #expect(Timestamp(microseconds: 253_402_300_800_000_000).iso8601 == "10000-01-01T00:00:00.000000Z")
        #expect(Timestamp(microseconds: -62_167_219_200_000_001).iso8601 == "00-1-12-31T23:59:59.999999Z")
    }
}

extension String {
    /// 32 hex digits as 8-4-4-4-12.
    fileprivate func chunked() -> String {
        let characters = Array(self)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }.joined(separator: "-")
    }
}
