import HummingbirdBcrypt
import NIOPosix

/// Hashes and checks passwords with bcrypt on NIO's thread pool, because a bcrypt round
/// takes tens of milliseconds by design and must not stall Swift's cooperative threads.
struct PasswordHasher: Sendable {
    let cost: UInt8

    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, against hash: String) async -> Bool {
        (try? await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }) ?? false
    }
}
