import Foundation
import Hub
import JWTKit
import Logging

/// Issues and checks the hub's HS256 access, refresh and admin tokens.
struct TokenService: Sendable {
    /// Shortest secret accepted: HS256 keys below 32 bytes are weak (and jwt-kit refuses them).
    static let minimumSecretBytes = 32

    private let keys: JWTKeyCollection
    private let accessLifetime: Duration
    private let refreshLifetime: Duration

    init(secret: String, accessLifetime: Duration, refreshLifetime: Duration) async throws {
        guard secret.utf8.count >= Self.minimumSecretBytes else {
            throw ConfigurationError("The JWT secret must be at least \(Self.minimumSecretBytes) bytes long.")
        }
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.accessLifetime = accessLifetime
        self.refreshLifetime = refreshLifetime
    }

    /// The token service of a configured hub: its secret, or the one generated once and kept in
    /// its data folder.
    init(configuration: HubConfiguration, logger: Logger) async throws {
        let secret = try configuration.jwtSecret ?? JWTSecretFile.loadOrCreate(in: configuration.dataDirectory, logger: logger)
        try await self.init(
            secret: secret, accessLifetime: configuration.accessTokenLifetime, refreshLifetime: configuration.refreshTokenLifetime
        )
    }

    func accessToken(for user: User, now: Date = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))) async throws -> String {
        try await keys.sign(
            AccessClaims(
                tokenType: "access", exp: .init(value: now.addingTimeInterval(accessLifetime.seconds)), iat: .init(value: now),
                jti: .init(value: UUID().lowercasedText), id: user.id, username: user.username,
                firstName: user.firstName, lastName: user.lastName, group: user.group.rawValue,
                photo: MediaPath.url(for: user.photo)
            )
        )
    }

    func refreshToken(for user: User, now: Date = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))) async throws -> String {
        try await keys.sign(
            RefreshClaims(
                tokenType: "refresh", exp: .init(value: now.addingTimeInterval(refreshLifetime.seconds)), iat: .init(value: now),
                jti: .init(value: UUID().lowercasedText), id: user.id
            )
        )
    }

    /// A token that lets the command line create operators for `lifetime`.
    func adminToken(lifetime: Duration = .seconds(60), now: Date = Date()) async throws -> String {
        try await keys.sign(
            AdminClaims(
                tokenType: "admin", exp: .init(value: now.addingTimeInterval(lifetime.seconds)), iat: .init(value: now),
                jti: .init(value: UUID().lowercasedText)
            )
        )
    }

    /// Whether `token` is a valid, unexpired admin token.
    func isAdmin(_ token: String) async -> Bool {
        (try? await keys.verify(token, as: AdminClaims.self)) != nil
    }

    /// The user id of a valid, unexpired access token, or nil.
    func verifyAccess(_ token: String) async -> Int? {
        try? await keys.verify(token, as: AccessClaims.self).id
    }

    /// The user id of a valid, unexpired refresh token, or nil.
    func verifyRefresh(_ token: String) async -> Int? {
        try? await keys.verify(token, as: RefreshClaims.self).id
    }
}

extension Duration {
    var seconds: TimeInterval {
        let parts = components
        return TimeInterval(parts.seconds) + TimeInterval(parts.attoseconds) / 1e18
    }
}
