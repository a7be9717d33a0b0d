import Hub

/// What the command line asks for to make an operator, and the rules it must meet (the sign-up
/// rules for usernames, names and passwords).
public struct OperatorAccount: Sendable {
    public var username: String
    public var password: String
    public var firstName: String
    public var lastName: String

    public init(username: String, password: String, firstName: String = "", lastName: String = "") {
        self.username = username
        self.password = password
        self.firstName = firstName
        self.lastName = lastName
    }

    /// Field errors worded as sign-up words them; empty when the account can be made.
    public func problems(isTaken: (String) -> Bool) -> [String: [String]] {
        var errors: [String: [String]] = [:]
        if username.isEmpty {
            errors["username"] = ["This field may not be blank."]
        } else if !AuthController.isValidUsername(username) {
            errors["username"] = [
                "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
            ]
        } else if isTaken(username) {
            errors["username"] = ["A user with that username already exists."]
        }
        if let problem = PasswordRules.problem(with: password) {
            errors["password"] = [problem]
        }
        for (key, value) in [("first_name", firstName), ("last_name", lastName)] where value.count > 150 {
            errors[key] = ["Ensure this field has no more than 150 characters."]
        }
        return errors
    }
}

/// An operator account that cannot be made; `fields` says why, per field.
public struct OperatorAccountError: Error, CustomStringConvertible {
    public let fields: [String: [String]]

    public init(fields: [String: [String]]) {
        self.fields = fields
    }

    public var description: String {
        fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.joined(separator: " "))" }.joined(separator: "\n")
    }
}
