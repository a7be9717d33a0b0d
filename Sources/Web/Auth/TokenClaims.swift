import Foundation
import Hub
import JWTKit

/// Claims of an access token, as the reference's simplejwt set-up writes them
/// (`USER_ID_CLAIM = "id"` plus the user's public fields).
struct AccessClaims: JWTPayload, Equatable {
    var tokenType: String
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    var jti: IDClaim
    var id: Int
    var username: String
    var firstName: String
    var lastName: String
    var group: String
    var photo: String?

    enum CodingKeys: String, CodingKey {
        case tokenType = "token_type"
        case exp, iat, jti, id, username, group, photo
        case firstName = "first_name"
        case lastName = "last_name"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tokenType, forKey: .tokenType)
        try container.encode(exp, forKey: .exp)
        try container.encode(iat, forKey: .iat)
        try container.encode(jti, forKey: .jti)
        try container.encode(id, forKey: .id)
        try container.encode(username, forKey: .username)
        try container.encode(firstName, forKey: .firstName)
        try container.encode(lastName, forKey: .lastName)
        try container.encode(group, forKey: .group)
        try container.encode(photo, forKey: .photo)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        guard tokenType == "access" else { throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "not an access token") }
    }
}

/// Claims of a refresh token: only who it is for.
struct RefreshClaims: JWTPayload, Equatable {
    var tokenType: String
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    var jti: IDClaim
    var id: Int

    enum CodingKeys: String, CodingKey {
        case tokenType = "token_type"
        case exp, iat, jti, id
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        guard tokenType == "refresh" else { throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "not a refresh token") }
    }
}

/// Claims of an admin token: made by the command line with the hub's own secret, good only for
/// creating operators (`POST /api/operators/`), and short-lived.
struct AdminClaims: JWTPayload, Equatable {
    var tokenType: String
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    var jti: IDClaim

    enum CodingKeys: String, CodingKey {
        case tokenType = "token_type"
        case exp, iat, jti
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        guard tokenType == "admin" else { throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "not an admin token") }
    }
}
