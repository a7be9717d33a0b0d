/// Any JSON value, for reading client messages field by field and reporting exactly
/// which field is missing or has the wrong type. `JSONReader` builds it.
enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    var objectValue: JSONObject? {
        if case .object(let value) = self { value } else { nil }
    }

    /// A JSON number that is a whole number fitting an `Int`.
    var intValue: Int? {
        guard case .number(let value) = self, value.rounded() == value, abs(value) < 9e15 else { return nil }
        return Int(value)
    }
}

/// A JSON object's members in document order. A repeated key counts once, with its first value,
/// as with `JSONDecoder`.
///
/// A list rather than a dictionary: a message's objects have a handful of members, each read
/// once or twice, and hashing every key into a growing dictionary was a fifth of the parse.
/// Every look-up is one pass, so a message costs at most a few passes over its own members.
struct JSONObject: Sendable, Equatable {
    private let members: [(key: String, value: JSONValue)]

    init(_ members: [(key: String, value: JSONValue)]) {
        self.members = members
    }

    /// The first value of `key`.
    subscript(key: String) -> JSONValue? {
        for member in members where member.key == key {
            return member.value
        }
        return nil
    }

    /// Every key once, with its first value, in document order.
    var uniqueMembers: [(key: String, value: JSONValue)] {
        var seen: Set<String> = []
        return members.filter { seen.insert($0.key).inserted }
    }

    /// Equal when they hold the same keys with the same (first) values, in any order.
    static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        func dictionary(_ object: JSONObject) -> [String: JSONValue] {
            Dictionary(object.uniqueMembers, uniquingKeysWith: { first, _ in first })
        }
        return dictionary(lhs) == dictionary(rhs)
    }
}
