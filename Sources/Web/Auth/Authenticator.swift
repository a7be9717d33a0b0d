import Hub
import Hummingbird

/// Resolves the user behind an access token, from a `Bearer` header or a `?token=` query.
struct Authenticator: Sendable {
    let tokens: TokenService
    let users: UserDirectory

    /// The user of a valid access token naming an existing user, or nil.
    func user(forToken token: String) async -> User? {
        guard let id = await tokens.verifyAccess(token) else { return nil }
        return users.user(id: id)
    }

    /// The user of the request's `Authorization: Bearer` token, or a DRF-style 401.
    func requireUser(_ request: Request) async throws -> User {
        guard let header = request.headers[.authorization] else {
            throw APIError.detail(.unauthorized, "Authentication credentials were not provided.")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] == "Bearer", let user = await user(forToken: String(parts[1])) else {
            throw APIError.detail(.unauthorized, "Given token not valid for any token type", code: "token_not_valid")
        }
        return user
    }
}
