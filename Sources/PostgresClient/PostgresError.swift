/// A PostgreSQL error code (SQLSTATE): five characters, the first two naming the class
/// (`23` integrity constraint violation, `08` connection exception, …).
public struct SQLState: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public init(stringLiteral value: String) {
        self.rawValue = value
    }

    public var description: String { rawValue }

    /// The class: the code's first two characters.
    public var errorClass: String { String(rawValue.prefix(2)) }

    public static let successfulCompletion: SQLState = "00000"
    public static let connectionException: SQLState = "08000"
    public static let connectionFailure: SQLState = "08006"
    public static let characterNotInRepertoire: SQLState = "22021"
    public static let notNullViolation: SQLState = "23502"
    public static let foreignKeyViolation: SQLState = "23503"
    public static let uniqueViolation: SQLState = "23505"
    public static let checkViolation: SQLState = "23514"
    public static let serializationFailure: SQLState = "40001"
    public static let deadlockDetected: SQLState = "40P01"
    public static let syntaxError: SQLState = "42601"
    public static let undefinedColumn: SQLState = "42703"
    public static let undefinedTable: SQLState = "42P01"
    public static let queryCanceled: SQLState = "57014"
    public static let adminShutdown: SQLState = "57P01"
    public static let crashShutdown: SQLState = "57P02"
    public static let cannotConnectNow: SQLState = "57P03"
}

/// What went wrong talking to PostgreSQL, with the server's SQLSTATE when the server said.
public struct PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No usable connection: connecting failed, or the connection broke during the call
        /// (server restarted, backend terminated, network gone). The next call reconnects.
        case connection
        /// The server rejected a statement; `sqlState` says why.
        case server
        /// The client side refused or could not make sense of something: a parameter PostgreSQL
        /// cannot store, a result of an unexpected shape, a value that does not decode.
        case client
    }

    public var kind: Kind
    /// The server's error code; nil for errors libpq made up itself (such as a refused connection).
    public var sqlState: SQLState?
    /// The primary, human-readable message.
    public var message: String
    public var detail: String?
    public var hint: String?

    public init(kind: Kind, sqlState: SQLState? = nil, message: String, detail: String? = nil, hint: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    /// Whether the connection is gone, so that the same work may succeed on a new one.
    public var isConnectionLost: Bool {
        if kind == .connection { return true }
        guard let sqlState else { return false }
        return sqlState.errorClass == "08"
            || [SQLState.adminShutdown, .crashShutdown, .cannotConnectNow].contains(sqlState)
    }

    public var description: String {
        var text = "PostgreSQL"
        switch kind {
        case .connection: text += " connection error"
        case .server: text += " error"
        case .client: text += " client error"
        }
        if let sqlState { text += " \(sqlState)" }
        text += ": \(message)"
        if let detail, !detail.isEmpty { text += " (detail: \(detail))" }
        if let hint, !hint.isEmpty { text += " (hint: \(hint))" }
        return text
    }
}
