import Foundation
import Logging

/// The JWT secret when none is configured: generated once and kept in the data folder,
/// so tokens stay valid across restarts.
enum JWTSecretFile {
    static func loadOrCreate(in directory: String, logger: Logger) throws -> String {
        let url = URL(fileURLWithPath: directory).appendingPathComponent("jwt-secret")
        if let existing = try? String(contentsOf: url, encoding: .utf8),
            existing.trimmingCharacters(in: .whitespacesAndNewlines).utf8.count >= TokenService.minimumSecretBytes
        {
            logger.warning("No JWT secret configured (TAXI_HUB_JWT_SECRET): using the one kept in \(url.path)")
            return existing.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<48).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let secret = Data(bytes).base64EncodedString()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(secret.utf8).write(to: url, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        logger.warning("No JWT secret configured (TAXI_HUB_JWT_SECRET): generated one and kept it in \(url.path)")
        return secret
    }
}
