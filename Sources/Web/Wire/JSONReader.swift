/// A strict JSON reader (RFC 8259) for what clients send: builds a `JSONValue` straight from the
/// UTF-8 bytes in one pass.
///
/// Every WebSocket frame is parsed, and Foundation's `JSONDecoder` took a fifth of the hub's CPU
/// at 20,000 messages/s (docs/benchmarks-history.md, "Where the CPU went"). This reader accepts exactly what
/// `JSONDecoder` accepts (tests compare the two on generated and mutated documents), one trailing
/// comma before a closing bracket included, except that it refuses nesting deeper than `maxDepth`.
struct JSONReader {
    /// The deepest nesting accepted. No message of the protocol nests more than three levels;
    /// the limit keeps a frame of `[[[[…` from costing stack.
    static let maxDepth = 64

    /// The value `text` holds, or nil when it is not one well-formed JSON value.
    static func parse(_ text: String) -> JSONValue? {
        var text = text
        return text.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// The value `bytes` hold, or nil when they are not one well-formed JSON value in UTF-8.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> JSONValue? {
        var reader = JSONReader(bytes: bytes)
        guard let value = reader.value(depth: 0) else { return nil }
        reader.skipWhitespace()
        return reader.index == bytes.count ? value : nil
    }

    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    private init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    private var current: UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
            index += 1
        }
    }

    /// Consumes `literal` if the input continues with it.
    private mutating func consume(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] {
            return false
        }
        index += count
        return true
    }

    private mutating func value(depth: Int) -> JSONValue? {
        skipWhitespace()
        switch current {
        case UInt8(ascii: "{"):
            return object(depth: depth + 1)
        case UInt8(ascii: "["):
            return array(depth: depth + 1)
        case UInt8(ascii: "\""):
            return string().map(JSONValue.string)
        case UInt8(ascii: "t"):
            return consume("true") ? .bool(true) : nil
        case UInt8(ascii: "f"):
            return consume("false") ? .bool(false) : nil
        case UInt8(ascii: "n"):
            return consume("null") ? .null : nil
        default:
            return number().map(JSONValue.number)
        }
    }

    private mutating func object(depth: Int) -> JSONValue? {
        guard depth <= Self.maxDepth else { return nil }
        index += 1  // {
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject(members))
        }
        members.reserveCapacity(8)
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\""), let key = string() else { return nil }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { return nil }
            index += 1
            guard let member = value(depth: depth) else { return nil }
            members.append((key, member))
            guard let closed = endOfItem(closing: UInt8(ascii: "}")) else { return nil }
            if closed { return .object(JSONObject(members)) }
        }
    }

    private mutating func array(depth: Int) -> JSONValue? {
        guard depth <= Self.maxDepth else { return nil }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            guard let element = value(depth: depth) else { return nil }
            elements.append(element)
            guard let closed = endOfItem(closing: UInt8(ascii: "]")) else { return nil }
            if closed { return .array(elements) }
        }
    }

    /// What follows a member or element: true when `bracket` closes the container (consumed;
    /// one trailing comma before it is allowed), false after a comma, nil on anything else.
    private mutating func endOfItem(closing bracket: UInt8) -> Bool? {
        skipWhitespace()
        switch current {
        case UInt8(ascii: ","):
            index += 1
            skipWhitespace()
            guard current == bracket else { return false }
            index += 1
            return true
        case bracket:
            index += 1
            return true
        default:
            return nil
        }
    }

    /// A string starting at its opening quote. Strings without escapes, nearly all of them, are
    /// one copy of their bytes: ASCII needs no validation (`String(validating:)` is generic and
    /// cost 2 % of the hub's CPU at 20,000 messages/s), anything else is validated as UTF-8.
    private mutating func string() -> String? {
        index += 1  // "
        let start = index
        var ascii = true
        while let byte = current {
            switch byte {
            case UInt8(ascii: "\""):
                defer { index += 1 }
                let content = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                return ascii ? String(decoding: content, as: UTF8.self) : String(validating: content, as: UTF8.self)
            case UInt8(ascii: "\\"):
                return escapedString(from: start)
            case 0..<0x20:
                return nil
            default:
                if byte >= 0x80 { ascii = false }
                index += 1
            }
        }
        return nil
    }

    /// The rest of a string from its first escape on; `start` is its first byte after the quote.
    private mutating func escapedString(from start: Int) -> String? {
        var utf8 = Array(bytes[start..<index])
        while let byte = current {
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: utf8, as: UTF8.self)
            case 0..<0x20:
                return nil
            case UInt8(ascii: "\\"):
                guard let escaped = current else { return nil }
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escaped)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape() else { return nil }
                    utf8.append(contentsOf: String(Character(scalar)).utf8)
                default: return nil
                }
            default:
                utf8.append(byte)
            }
        }
        return nil
    }

    /// The scalar of a `\uXXXX` escape after its `u`, taking a following low surrogate along
    /// with a high one; a lone surrogate is an error.
    private mutating func unicodeEscape() -> Unicode.Scalar? {
        guard let unit = hexQuad() else { return nil }
        switch unit {
        case 0xD800..<0xDC00:
            guard consume("\\u"), let low = hexQuad(), (0xDC00..<0xE000).contains(low) else { return nil }
            return Unicode.Scalar(0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00))
        case 0xDC00..<0xE000:
            return nil
        default:
            return Unicode.Scalar(unit)
        }
    }

    private mutating func hexQuad() -> UInt16? {
        guard bytes.count - index >= 4 else { return nil }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let digit: UInt8
            switch bytes[index] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = bytes[index] - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = bytes[index] - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = bytes[index] - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    /// A number in JSON's grammar (`-? int frac? exp?`). Up to 15 significant digits and 22
    /// decimals, the common case of coordinates and ids, converts exactly with one division
    /// (both operands are exact doubles, so the quotient is correctly rounded); anything else
    /// goes through the C library's `strtod`. Too large for a `Double`, or so small that it would
    /// read as 0, is an error (as with `JSONDecoder`).
    private mutating func number() -> Double? {
        let start = index
        let negative = current == UInt8(ascii: "-")
        if negative { index += 1 }
        var mantissa: Int64 = 0
        var digits = 0  // significant ones: from the first non-zero digit on
        guard let first = current, isDigit(first) else { return nil }
        if first == UInt8(ascii: "0") {
            index += 1
        } else {
            while let byte = current, isDigit(byte) {
                mantissa = mantissa &* 10 &+ Int64(byte - UInt8(ascii: "0"))
                digits += 1
                index += 1
            }
        }
        var decimals = 0
        if current == UInt8(ascii: ".") {
            index += 1
            guard let byte = current, isDigit(byte) else { return nil }
            while let byte = current, isDigit(byte) {
                mantissa = mantissa &* 10 &+ Int64(byte - UInt8(ascii: "0"))
                if mantissa != 0 { digits += 1 }
                decimals += 1
                index += 1
            }
        }
        var hasExponent = false
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            hasExponent = true
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard let byte = current, isDigit(byte) else { return nil }
            while let byte = current, isDigit(byte) { index += 1 }
        }
        if !hasExponent, digits <= 15, decimals <= 22 {
            let magnitude = Double(mantissa) / Self.powersOfTen[decimals]
            return negative ? -magnitude : magnitude
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite, value != 0 || digits == 0 else { return nil }
        return value
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// 10⁰ … 10²², every one an exact `Double`.
    private static let powersOfTen: [Double] = (0...22).map { exponent in
        (0..<exponent).reduce(1.0) { product, _ in product * 10 }
    }
}
