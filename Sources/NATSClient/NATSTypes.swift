import CNATS

/// A message received from NATS: its subject, the subject to reply to (when the sender
/// expects an answer) and a copy of its payload.
public struct NATSMessage: Sendable {
    public let subject: String
    public let reply: String?
    public let payload: [UInt8]

    public init(subject: String, reply: String?, payload: [UInt8]) {
        self.subject = subject
        self.reply = reply
        self.payload = payload
    }
}

/// Where a connection stands; reconnecting counts as disconnected.
public enum NATSConnectionState: Sendable {
    case connected, disconnected, closed
}

public struct NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable {
        case timeout, noResponders, notConnected, closed, invalidSubject, other
    }

    public let code: Code
    public let message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "NATSError.\(code): \(message)" }

    static let closed = NATSError(code: .closed, message: "the connection is closed")

    /// The error for a failed C call: its status mapped to a code, with the C client's text.
    init(status: natsStatus, context: String) {
        let code: Code =
            switch status {
            case NATS_TIMEOUT: .timeout
            case NATS_NO_RESPONDERS: .noResponders
            case NATS_CONNECTION_CLOSED: .closed
            case NATS_NOT_YET_CONNECTED, NATS_CONNECTION_DISCONNECTED, NATS_NO_SERVER: .notConnected
            case NATS_INVALID_SUBJECT: .invalidSubject
            default: .other
            }
        var text = String(cString: natsStatus_GetText(status))
        if let last = nats_GetLastError(nil) {
            let detail = String(cString: last)
            if !detail.isEmpty, detail != text { text += " (\(detail))" }
        }
        self.init(code: code, message: "\(context): \(text)")
    }
}

/// A connection's counters since it was created (all reconnections included).
public struct NATSStatistics: Sendable {
    public let inMessages, outMessages, inBytes, outBytes, reconnects: UInt64

    public init(inMessages: UInt64, outMessages: UInt64, inBytes: UInt64, outBytes: UInt64, reconnects: UInt64) {
        self.inMessages = inMessages
        self.outMessages = outMessages
        self.inBytes = inBytes
        self.outBytes = outBytes
        self.reconnects = reconnects
    }
}

/// NATS subject syntax, checked before a subject reaches the C client (which only rejects
/// empty ones; the server would close the connection on others).
enum SubjectSyntax {
    /// A subject to publish to: dot-separated non-empty tokens, no wildcard, no white
    /// space or control characters.
    static func isValidPublishSubject(_ subject: String) -> Bool {
        check(subject, wildcards: false)
    }

    /// A subject to subscribe to: like a publish subject, but a token may be `*`, and the
    /// last token may be `>`.
    static func isValidSubscribeSubject(_ subject: String) -> Bool {
        check(subject, wildcards: true)
    }

    /// A queue group name: non-empty, no white space or control characters.
    static func isValidQueueGroup(_ name: String) -> Bool {
        !name.isEmpty && !name.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f })
    }

    private static func check(_ subject: String, wildcards: Bool) -> Bool {
        var tokenLength = 0
        var tokenFirstByte: UInt8 = 0
        var sawFullWildcard = false
        // Checks the token that just ended; false when it breaks the rules.
        func tokenIsValid() -> Bool {
            if tokenLength == 0 || sawFullWildcard { return false }  // empty token, or one after `>`
            guard tokenLength == 1, tokenFirstByte == UInt8(ascii: "*") || tokenFirstByte == UInt8(ascii: ">") else { return true }
            if tokenFirstByte == UInt8(ascii: ">") { sawFullWildcard = true }
            return wildcards
        }
        for byte in subject.utf8 {
            if byte <= 0x20 || byte == 0x7f { return false }
            if byte == UInt8(ascii: ".") {
                guard tokenIsValid() else { return false }
                tokenLength = 0
            } else {
                if tokenLength == 0 { tokenFirstByte = byte }
                tokenLength += 1
            }
        }
        return tokenIsValid()
    }
}
