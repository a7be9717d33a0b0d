/// Which side of the market a user is on; fixed when the account is made.
public enum UserGroup: String, Sendable, Codable, CaseIterable {
    case rider
    case driver
    /// Watches the hub, read-only; made only from the command line, never by sign-up.
    case `operator`

    /// The groups a user may choose at sign-up.
    public static let signUpChoices: [UserGroup] = [.rider, .driver]
}

/// A user account as the hub keeps it. The password is only ever a bcrypt hash,
/// made and checked by the web layer; the hub stores the string.
public struct User: Sendable, Hashable, Codable {
    public let id: Int
    public var username: String
    public var firstName: String
    public var lastName: String
    public var group: UserGroup
    /// Path of the uploaded photo under the media URL prefix (`photos/x.png`), or nil.
    public var photo: String?
    public var passwordHash: String

    public init(
        id: Int, username: String, firstName: String, lastName: String,
        group: UserGroup, photo: String?, passwordHash: String
    ) {
        self.id = id
        self.username = username
        self.firstName = firstName
        self.lastName = lastName
        self.group = group
        self.photo = photo
        self.passwordHash = passwordHash
    }
}

/// Who sent a message, as established by the server from the caller's token.
public struct Principal: Sendable, Hashable, Codable {
    public let userID: Int
    public let group: UserGroup

    public init(userID: Int, group: UserGroup) {
        self.userID = userID
        self.group = group
    }
}
