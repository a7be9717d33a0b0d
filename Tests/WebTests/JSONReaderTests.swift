import Foundation
import Hub
import NIOCore
import PropertyBased
import Testing

@testable import Web
import TestSupport

@Suite("JSON reader", MachineLoad.shared)
struct JSONReaderTests {
    @Test("generated documents read the same as with JSONDecoder, however they are written")
    func agreesOnGeneratedDocuments() async {
        await propertyCheck(count: 300, input: Self.documents) { document in
            let ours = JSONReader.parse(document.text)
            #expect(ours == document.value, "\(document.text)")
            #expect(ours == Self.reference(document.text), "\(document.text)")
        }
    }

    @Test("a document with a byte changed, added or removed is refused or read as JSONDecoder reads it")
    func agreesOnMutatedDocuments() async {
        let mutated = Generator { rng in
            let document = Self.randomDocument(rng: &rng)
            var bytes = Array(document.text.utf8)
            let position = Int.random(in: 0...bytes.count, using: &rng)
            let byte = Self.interestingBytes.randomElement(using: &rng)!
            switch Int.random(in: 0..<3, using: &rng) {
            case 0 where position < bytes.count: bytes[position] = byte
            case 1 where position < bytes.count: bytes.remove(at: position)
            default: bytes.insert(byte, at: position)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        await propertyCheck(count: 3_000, input: mutated) { text in
            #expect(JSONReader.parse(text) == Self.reference(text), "\(text)")
        }
    }

    @Test("numbers convert exactly, on the fast path and off it", arguments: [
        ("52.520008", 52.520008), ("-13.404954", -13.404954), ("0", 0), ("-0", -0.0), ("1795000000000", 1_795_000_000_000),
        ("0.1", 0.1), ("123456789012345", 123_456_789_012_345), ("1234567890123456789", 1_234_567_890_123_456_768),
        ("0.30000000000000004", 0.30000000000000004), ("1e3", 1000), ("2.5E-3", 0.0025), ("1.7976931348623157e308", .greatestFiniteMagnitude),
        ("4.9e-324", .leastNonzeroMagnitude), ("0.0000000000000000000001", 1e-22), ("0.00000000000000000000001", 1e-23),
    ])
    func numbers(text: String, expected: Double) throws {
        let value = try #require(JSONReader.parse(text))
        #expect(value == .number(expected))
        if case .number(let number) = value { #expect(number.sign == expected.sign) }
    }

    @Test("random doubles written by Swift read back bit for bit")
    func doublesRoundTrip() async {
        let doubles = Generator { rng in
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: Double.random(in: -180...180, using: &rng)
            case 1:
                // Any finite double: a random bit pattern with its exponent field below all ones.
                Double(bitPattern: rng.next() & ~(0x7FF << 52) | (UInt64.random(in: 0..<0x7FF, using: &rng) << 52))
            default: (Double.random(in: -1e6...1e6, using: &rng) * 1e6).rounded() / 1e6
            }
        }
        await propertyCheck(count: 5_000, input: doubles) { double in
            #expect(JSONReader.parse("\(double)") == .number(double), "\(double)")
        }
    }

    @Test("what JSON does not allow is refused", arguments: [
        "", " ", "{", "}", "[1,,]", "[,]", "{,}", "{\"a\":1,,}", "{\"a\" 1}", "{a:1}", "'a'", "01", "-", "1.", ".5", "1e", "+1", "NaN", "Infinity",
        "1e400", "-1e400", "tru", "nul", "\"a", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "\"tab\there\"", "[1 2]", "{} {}", "1 2", "\"a\"\"b\"",
    ])
    func refusals(text: String) {
        #expect(JSONReader.parse(text) == nil)
    }

    @Test("escapes and non-ASCII text read as JSONDecoder reads them", arguments: [
        #""\"\\\/\b\f\n\r\t""#, #""\u00e9\u4e2d\ud83d\ude95""#, "\"é中🚕\"", #""a\u0000b""#, #"{"k\u0041y":"v"}"#,
    ])
    func escapes(text: String) throws {
        let value = try #require(JSONReader.parse(text))
        #expect(value == Self.reference(text))
    }

    @Test("nesting is accepted to the limit and refused past it, without costing stack")
    func depth() {
        let limit = JSONReader.maxDepth
        #expect(JSONReader.parse(String(repeating: "[", count: limit) + String(repeating: "]", count: limit)) != nil)
        #expect(JSONReader.parse(String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)) == nil)
        #expect(JSONReader.parse(String(repeating: "{\"a\":", count: limit + 1) + "1" + String(repeating: "}", count: limit + 1)) == nil)
        #expect(JSONReader.parse(String(repeating: "[", count: 1_000_000)) == nil)
    }

    @Test("bytes that are not UTF-8 are refused")
    func invalidUTF8() {
        let bytes: [UInt8] = [UInt8(ascii: "\""), 0xC3, 0x28, UInt8(ascii: "\"")]
        #expect(bytes.withUnsafeBytes { JSONReader.parse($0) } == nil)
    }

    @Test("a socket's message is parsed from its bytes: the same message as from text, and bad_message when not UTF-8")
    func messageFromBytes() {
        let text = #"{"type":"update.location","data":{"lat":52.5,"lng":13.4,"heading":90}}"#
        let now = Timestamp.now()
        #expect(ClientMessageParser.parse(ByteBuffer(string: text), receivedAt: now) == ClientMessageParser.parse(text, receivedAt: now))
        var invalid = ByteBuffer(string: #"{"type":"echo.message","data":""#)
        invalid.writeBytes([0xC3, 0x28])
        invalid.writeString(#""}"#)
        guard case .failure(let error) = ClientMessageParser.parse(invalid) else {
            Issue.record("text that is not UTF-8 was accepted")
            return
        }
        #expect(error.code == .badMessage)
    }

    // MARK: - Generated documents

    /// A JSON document: the value it holds and one way to write it.
    struct Document: Sendable {
        let value: JSONValue
        let text: String
    }

    static let documents = Generator { rng in randomDocument(rng: &rng) }

    static func randomDocument(rng: inout any SeededRandomNumberGenerator) -> Document {
        let value = randomValue(depth: 0, rng: &rng)
        return Document(value: value, text: write(value, rng: &rng))
    }

    /// Bytes worth putting where they do not belong.
    static let interestingBytes = Array("{}[]\",:\\0123456789-+.eEtfnu \n\t".utf8) + [0x00, 0x1F, 0x7F]

    private static func randomValue(depth: Int, rng: inout any SeededRandomNumberGenerator) -> JSONValue {
        switch Int.random(in: 0..<(depth >= 3 ? 5 : 7), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .number(randomNumber(rng: &rng))
        case 3, 4: return .string(randomString(rng: &rng))
        case 5: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomValue(depth: depth + 1, rng: &rng) })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                object[randomString(rng: &rng)] = randomValue(depth: depth + 1, rng: &rng)
            }
            return .object(JSONObject(object.map { ($0.key, $0.value) }))
        }
    }

    private static func randomNumber(rng: inout any SeededRandomNumberGenerator) -> Double {
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: Double(Int.random(in: -1_000_000...1_000_000, using: &rng))
        case 1: Double.random(in: -180...180, using: &rng)
        case 2: Double(Int64.random(in: -(1 << 53)...(1 << 53), using: &rng))
        default: Double.random(in: 0...1, using: &rng) * pow(10, Double(Int.random(in: -300...300, using: &rng)))
        }
    }

    private static func randomString(rng: inout any SeededRandomNumberGenerator) -> String {
        let alphabet: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{01}", "é", "中", "🚕", "_", "-"]
        return String((0..<Int.random(in: 0...8, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
    }

    /// `value` as JSON text, with random white space, escapes and number spellings.
    private static func write(_ value: JSONValue, rng: inout any SeededRandomNumberGenerator) -> String {
        let space = [" ", "", "", "\n", "\t", "\r\n "].randomElement(using: &rng)!
        switch value {
        case .null: return space + "null"
        case .bool(let bool): return "\(bool)" + space
        case .number(let number):
            if number == number.rounded(), abs(number) < 1e15, Bool.random(using: &rng) {
                return String(Int64(number)) + (Bool.random(using: &rng) ? "" : "e0")
            }
            return "\(number)".replacingOccurrences(of: "e+", with: Bool.random(using: &rng) ? "e" : "E+")
        case .string(let string): return space + quoted(string, rng: &rng)
        case .array(let elements):
            return "[" + elements.map { write($0, rng: &rng) }.joined(separator: ",") + space + "]"
        case .object(let object):
            return "{" + space + object.uniqueMembers.map { quoted($0.key, rng: &rng) + space + ":" + write($0.value, rng: &rng) }.joined(separator: ",") + "}"
        }
    }

    private static func quoted(_ string: String, rng: inout any SeededRandomNumberGenerator) -> String {
        var text = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += Bool.random(using: &rng) ? "\\\\" : "\\u005c"
            case "\n": text += "\\n"
            case "\t": text += "\\t"
            case "/": text += Bool.random(using: &rng) ? "/" : "\\/"
            case _ where scalar.value < 0x20: text += String(format: "\\u%04x", scalar.value)
            case _ where scalar.value > 0xFFFF && Bool.random(using: &rng):
                let offset = scalar.value - 0x10000
                text += String(format: "\\u%04X\\u%04x", 0xD800 + (offset >> 10), 0xDC00 + (offset & 0x3FF))
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text + "\""
    }

    // MARK: - Reference

    /// What Foundation's `JSONDecoder` makes of `text`, the reader's yardstick.
    static func reference(_ text: String) -> JSONValue? {
        (try? JSONDecoder().decode(ReferenceValue.self, from: Data(text.utf8)))?.value
    }

    private struct ReferenceValue: Decodable {
        let value: JSONValue

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                value = .null
            } else if let bool = try? container.decode(Bool.self) {
                value = .bool(bool)
            } else if let number = try? container.decode(Double.self) {
                value = .number(number)
            } else if let string = try? container.decode(String.self) {
                value = .string(string)
            } else if let array = try? container.decode([ReferenceValue].self) {
                value = .array(array.map(\.value))
            } else {
                value = .object(JSONObject(try container.decode([String: ReferenceValue].self).map { ($0.key, $0.value.value) }))
            }
        }
    }
}
