/// Reads a few fields out of a JSON text without building a document: the members of one object
/// level as byte ranges, nested values skipped whole. Enough for the hub's frames, and cheap,
/// so the generator leaves the cores to the hub.
///
/// Not the hub's `JSONReader` (Web), on purpose: that one guards the hub against what clients
/// send, so it validates everything (RFC 8259 as `JSONDecoder` reads it, UTF-8, escapes, a depth
/// limit) and builds a whole `JSONValue`, every key and string allocated and every number a
/// `Double`. This one reads only the hub's own frames, trusts them, validates nothing it skips,
/// allocates only the strings it returns, and reads integers exactly: the monotonic nanoseconds
/// in echoed fixes pass 2⁵³ after about 104 days of uptime, where a `Double` (and
/// `JSONValue.intValue`, which refuses anything above 9e15) would not.
struct JSONScanner {
    /// One `"key": value` of an object; `value` spans the raw value (strings with their quotes).
    struct Member {
        let key: Range<Int>
        let value: Range<Int>
    }

    let bytes: UnsafeRawBufferPointer

    /// The members of the object that starts at or after `start` (after white space); nil when
    /// it is not an object or is malformed.
    func members(ofObjectAt start: Int = 0) -> [Member]? {
        var index = skipWhitespace(from: start)
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
        index += 1
        var members: [Member] = []
        while true {
            index = skipWhitespace(from: index)
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: "}") { return members }
            guard bytes[index] == UInt8(ascii: "\""), let keyEnd = endOfString(at: index) else { return nil }
            let key = (index + 1)..<(keyEnd - 1)
            index = skipWhitespace(from: keyEnd)
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
            index = skipWhitespace(from: index + 1)
            guard let valueEnd = endOfValue(at: index) else { return nil }
            members.append(Member(key: key, value: index..<valueEnd))
            index = skipWhitespace(from: valueEnd)
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] != UInt8(ascii: "}") {
                return nil
            }
        }
    }

    /// The value of `key` among `members`.
    func value(_ key: StaticString, in members: [Member]) -> Range<Int>? {
        members.first { member in
            member.key.count == key.utf8CodeUnitCount
                && key.withUTF8Buffer { name in zip(member.key, name).allSatisfy { bytes[$0] == $1 } }
        }?.value
    }

    /// A string value's text (escapes are not decoded: the hub's ids, statuses and codes have none).
    func string(_ range: Range<Int>?) -> String? {
        guard let range, range.count >= 2, bytes[range.lowerBound] == UInt8(ascii: "\"") else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)]), as: UTF8.self)
    }

    func double(_ range: Range<Int>?) -> Double? {
        guard let range else { return nil }
        return Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self))
    }

    func int(_ range: Range<Int>?) -> Int? {
        guard let range else { return nil }
        var value = 0
        for index in range {
            let digit = Int(bytes[index]) - Int(UInt8(ascii: "0"))
            guard (0...9).contains(digit) else { return nil }
            value = value &* 10 &+ digit
        }
        return range.isEmpty ? nil : value
    }

    func isNull(_ range: Range<Int>?) -> Bool {
        range?.count == 4 && bytes[range!.lowerBound] == UInt8(ascii: "n")
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    private func skipWhitespace(from start: Int) -> Int {
        var index = start
        while index < bytes.count, Self.isWhitespace(bytes[index]) { index += 1 }
        return index
    }

    /// The index after the closing quote of the string starting at `start`.
    private func endOfString(at start: Int) -> Int? {
        var index = start + 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""): return index + 1
            default: index += 1
            }
        }
        return nil
    }

    /// The index after the value starting at `start`: a string, an object or array (nested
    /// levels and strings in them skipped), or a number or literal.
    private func endOfValue(at start: Int) -> Int? {
        guard start < bytes.count else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "\""):
            return endOfString(at: start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var index = start
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard let end = endOfString(at: index) else { return nil }
                    index = end
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return index + 1 }
                default:
                    break
                }
                index += 1
            }
            return nil
        default:
            var index = start
            while index < bytes.count, !Self.isWhitespace(bytes[index]) {
                let byte = bytes[index]
                if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") { break }
                index += 1
            }
            return index > start ? index : nil
        }
    }
}
