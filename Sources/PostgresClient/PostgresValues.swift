import Foundation

/// A Swift value that can be sent to PostgreSQL as a query parameter or COPY field in the text
/// format. The server parses the text as the parameter's type, so quotes, backslashes or SQL in a
/// value are only ever data.
public protocol PostgresTextEncodable: Sendable {
    var postgresText: String { get }
}

/// A Swift value that can be sent as a field of a `COPY … (FORMAT binary)`: the bytes of the
/// column type's binary form (big-endian), which the server takes without parsing text.
/// The column must have that type (`Int`, `Int64`: `bigint`; `Int32`: `integer`; `Double`:
/// `float8`; `String`: `text`; `UUID`: `uuid`; `Bool`: `boolean`); otherwise the server refuses
/// the COPY.
public protocol PostgresBinaryEncodable: Sendable {
    func appendPostgresBinary(to buffer: inout [UInt8])
}

/// A value that can be a query parameter and a COPY field alike.
public typealias PostgresEncodable = PostgresTextEncodable & PostgresBinaryEncodable

extension FixedWidthInteger {
    /// The integer's bytes in network order, as PostgreSQL's binary formats take them.
    fileprivate func appendBigEndian(to buffer: inout [UInt8]) {
        withUnsafeBytes(of: bigEndian) { buffer.append(contentsOf: $0) }
    }
}

/// A Swift value that can be read from a column in PostgreSQL's text format.
public protocol PostgresTextDecodable: Sendable {
    /// nil when `text` is not a valid value of the type.
    init?(postgresText text: String)
}

extension String: PostgresTextEncodable, PostgresTextDecodable, PostgresBinaryEncodable {
    public func appendPostgresBinary(to buffer: inout [UInt8]) { buffer.append(contentsOf: utf8) }

    public var postgresText: String { self }
    public init?(postgresText text: String) { self = text }
}

extension Int: PostgresTextEncodable, PostgresTextDecodable, PostgresBinaryEncodable {
    public func appendPostgresBinary(to buffer: inout [UInt8]) { Int64(self).appendPostgresBinary(to: &buffer) }

    public var postgresText: String { String(self) }
    public init?(postgresText text: String) { self.init(text) }
}

extension Int64: PostgresTextEncodable, PostgresTextDecodable, PostgresBinaryEncodable {
    public func appendPostgresBinary(to buffer: inout [UInt8]) { appendBigEndian(to: &buffer) }

    public var postgresText: String { String(self) }
    public init?(postgresText text: String) { self.init(text) }
}

extension Int32: PostgresTextEncodable, PostgresTextDecodable, PostgresBinaryEncodable {
    public func appendPostgresBinary(to buffer: inout [UInt8]) { appendBigEndian(to: &buffer) }

    public var postgresText: String { String(self) }
    public init?(postgresText text: String) { self.init(text) }
}

extension Bool: PostgresTextEncodable, PostgresTextDecodable, PostgresBinaryEncodable {
    public func appendPostgresBinary(to buffer: inout [UInt8]) { buffer.append(self ? 1 : 0) }

    public var postgresText: String { self ? "t" : "f" }
    public init?(postgresText text: String) {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension Double: PostgresTextEncodable, PostgresTextDecodable, PostgresBinaryEncodable {
    /// The IEEE 754 bits, so every value (NaN and infinities too) arrives exactly.
    public func appendPostgresBinary(to buffer: inout [UInt8]) { Int64(bitPattern: bitPattern).appendPostgresBinary(to: &buffer) }

    /// Swift's shortest representation that reads back as the same bits; PostgreSQL's float8
    /// input is exact, so the value round-trips.
    public var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return description
    }

    public init?(postgresText text: String) {
        switch text {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default: self.init(text)
        }
    }
}

extension UUID: PostgresTextEncodable, PostgresTextDecodable, PostgresBinaryEncodable {
    public func appendPostgresBinary(to buffer: inout [UInt8]) { withUnsafeBytes(of: uuid) { buffer.append(contentsOf: $0) } }

    /// Lowercase `8-4-4-4-12` hex, as PostgreSQL prints a uuid: for parameters, including the
    /// multi-row upserts of small snapshots (large ones send ids in binary COPY), where a
    /// microsecond per id does not show.
    public var postgresText: String { uuidString.lowercased() }

    public init?(postgresText text: String) { self.init(uuidString: text) }
}

/// A one-dimensional array parameter (`$1::text[]`, `$1::bigint[]`), in the array text format.
public struct PostgresArray<Element: PostgresTextEncodable>: PostgresTextEncodable {
    public var elements: [Element?]

    public init(_ elements: [Element?]) {
        self.elements = elements
    }

    public var postgresText: String {
        var text = "{"
        for (index, element) in elements.enumerated() {
            if index > 0 { text += "," }
            guard let element else {
                text += "NULL"
                continue
            }
            // Every element quoted, so that NULL, empty strings, commas and braces stay data.
            text += "\""
            for character in element.postgresText.unicodeScalars {
                if character == "\"" || character == "\\" { text += "\\" }
                text.unicodeScalars.append(character)
            }
            text += "\""
        }
        return text + "}"
    }
}

/// The rows a statement returned, copied out of libpq's result so that they can leave the
/// connection's thread. Values are in PostgreSQL's text format; nil is SQL NULL.
public struct PostgresRows: Sendable, RandomAccessCollection {
    /// Column names, in result order.
    public let columns: [String]
    /// The command tag (`INSERT 0 3`, `SELECT 2`, …).
    public let commandTag: String
    /// Rows inserted, updated, deleted, copied or returned, when the command reports it.
    public let affectedRows: Int?
    private let values: [String?]

    init(columns: [String], values: [String?], commandTag: String, affectedRows: Int?) {
        self.columns = columns
        self.values = values
        self.commandTag = commandTag
        self.affectedRows = affectedRows
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { columns.isEmpty ? 0 : values.count / columns.count }

    public subscript(position: Int) -> PostgresRow {
        let start = position * columns.count
        return PostgresRow(columns: columns, values: values[start..<start + columns.count])
    }
}

/// One row of `PostgresRows`.
public struct PostgresRow: Sendable {
    public let columns: [String]
    private let values: ArraySlice<String?>

    init(columns: [String], values: ArraySlice<String?>) {
        self.columns = columns
        self.values = values
    }

    /// The text of column `index` (0-based), nil for NULL.
    public subscript(index: Int) -> String? {
        values[values.startIndex + index]
    }

    /// The text of the column named `name`, nil for NULL or a missing column.
    public subscript(name: String) -> String? {
        guard let index = columns.firstIndex(of: name) else { return nil }
        return self[index]
    }

    /// The value of column `index`; throws for NULL or text that is not a `T`.
    public func decode<T: PostgresTextDecodable>(_ type: T.Type, at index: Int) throws -> T {
        guard let value = try decodeIfPresent(type, at: index) else {
            throw PostgresError(kind: .client, message: "column \(columns[index]) is NULL, expected \(T.self)")
        }
        return value
    }

    /// The value of column `index`, nil for NULL; throws for text that is not a `T`.
    public func decodeIfPresent<T: PostgresTextDecodable>(_ type: T.Type, at index: Int) throws -> T? {
        guard let text = self[index] else { return nil }
        guard let value = T(postgresText: text) else {
            throw PostgresError(kind: .client, message: "column \(columns[index]) holds '\(text)', not a \(T.self)")
        }
        return value
    }

    /// The value of the column named `name`; throws for NULL, text that is not a `T`, or no such column.
    public func decode<T: PostgresTextDecodable>(_ type: T.Type, column name: String) throws -> T {
        try decode(type, at: try index(of: name))
    }

    /// The value of the column named `name`, nil for NULL; throws for text that is not a `T` or no such column.
    public func decodeIfPresent<T: PostgresTextDecodable>(_ type: T.Type, column name: String) throws -> T? {
        try decodeIfPresent(type, at: try index(of: name))
    }

    private func index(of name: String) throws -> Int {
        guard let index = columns.firstIndex(of: name) else {
            throw PostgresError(kind: .client, message: "no column \(name) in the result")
        }
        return index
    }
}
