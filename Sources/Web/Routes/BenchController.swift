import Foundation
import Hub
import Hummingbird

/// The load generator's helpers, served only with `benchRoutes` on. They hand out access tokens
/// without a password: never enable them on a public hub.
///
/// - `POST /bench/users` `{"prefix", "count", "group"}` creates `prefix-1` … `prefix-count` (or
///   reuses those that exist in the same group) and answers 201 with `[{"id", "username",
///   "access"}]`. One bcrypt hash, of a random password nobody knows, serves the whole batch, so
///   thousands of users take a second, not minutes of bcrypt.
/// - `/bench/echo` is a bare WebSocket echo (`EchoFrameHandler`, on the same NIO stack as
///   `/taxi/`): each frame comes back unchanged. No token, no hub, no JSON, so it measures the
///   transport alone, in the same process.
struct BenchController: Sendable {
    let users: UserDirectory
    let tokens: TokenService
    let passwords: PasswordHasher

    static let maxBatch = 100_000
    static let echoPath = "/bench/echo"

    private struct Batch: Decodable {
        let prefix: String
        let count: Int
        let group: String
    }

    private struct Created: Encodable {
        let id: Int
        let username: String
        let access: String
    }

    func addRoutes(to router: Router<HubRequestContext>) {
        router.post("/bench/users") { request, context in try await createUsers(request, context) }
    }

    private func createUsers(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let batch = try await request.decode(as: Batch.self, context: context)
        guard let group = UserGroup(rawValue: batch.group), UserGroup.signUpChoices.contains(group) else {
            throw APIError.fields(["group": ["\"\(batch.group)\" is not a valid choice."]])
        }
        guard (1...Self.maxBatch).contains(batch.count) else {
            throw APIError.fields(["count": ["Ensure this value is between 1 and \(Self.maxBatch)."]])
        }
        guard AuthController.isValidUsername("\(batch.prefix)-\(batch.count)") else {
            throw APIError.fields(["prefix": ["Usernames \(batch.prefix)-N must be valid usernames."]])
        }
        let hash = try await passwords.hash(UUID().uuidString)
        var created: [Created] = []
        var made: [User] = []
        created.reserveCapacity(batch.count)
        for index in 1...batch.count {
            let username = "\(batch.prefix)-\(index)"
            let new = users.user(username: username) == nil
                ? users.create(username: username, firstName: "Load", lastName: "Test", group: group, photo: nil, passwordHash: hash)
                : nil
            if let new { made.append(new) }
            guard let user = new ?? users.user(username: username) else { continue }
            guard user.group == group else {
                throw APIError.fields(["prefix": ["\(username) exists and is not a \(group.rawValue)."]])
            }
            created.append(Created(id: user.id, username: username, access: try await tokens.accessToken(for: user)))
        }
        // One commit for the whole batch, before any of its tokens is handed out.
        do {
            try await users.makeDurable(made)
        } catch {
            throw APIError.notDurable(error)
        }
        context.logger.notice("bench: \(created.count) \(group.rawValue) users ready", metadata: ["prefix": "\(batch.prefix)"])
        return JSONResponse.make(status: .created, created)
    }
}
