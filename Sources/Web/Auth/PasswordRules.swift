/// What a new password must be, at sign-up and for operators made on the command line.
enum PasswordRules {
    /// Django's default `MinimumLengthValidator`.
    static let minimumLength = 8

    /// The field error for a new password, in Django's words; nil when it is acceptable.
    static func problem(with password: String) -> String? {
        password.count < minimumLength
            ? "This password is too short. It must contain at least \(minimumLength) characters." : nil
    }
}
