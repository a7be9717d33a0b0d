import Hub
import Hummingbird

/// `POST /api/operators/`: makes an operator account for the command line (`taxi-hub user create
/// --operator`). Only an admin token, signed with the hub's own secret, may call it.
struct OperatorController: Sendable {
    let users: UserDirectory
    let tokens: TokenService
    let passwords: PasswordHasher

    static let path = "/api/operators/"

    func addRoutes(to router: Router<HubRequestContext>) {
        router.post(RouterPath(Self.path)) { request, context in try await create(request, context) }
    }

    private func create(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw APIError.detail(.unauthorized, "Authentication credentials were not provided.")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] == "Bearer", await tokens.isAdmin(String(parts[1])) else {
            throw APIError.detail(.forbidden, "Only the command line (an admin token) can create operators.")
        }
        let form = try await FormBody.read(request, limit: 64 * 1024)
        let account = OperatorAccount(
            username: form.fields["username"] ?? "", password: form.fields["password"] ?? "",
            firstName: form.fields["first_name"] ?? "", lastName: form.fields["last_name"] ?? ""
        )
        let errors = form.typeErrors.merging(account.problems { users.user(username: $0) != nil }) { typeError, _ in typeError }
        guard errors.isEmpty else { throw APIError.fields(errors) }
        let hash = try await passwords.hash(account.password)
        let created: User?
        do {
            created = try await users.signUp(
                username: account.username, firstName: account.firstName, lastName: account.lastName, group: .operator,
                photo: nil, passwordHash: hash
            )
        } catch {
            throw APIError.notDurable(error)
        }
        guard let user = created else {
            throw APIError.fields(["username": ["A user with that username already exists."]])
        }
        context.logger.notice("operator created", metadata: ["user.id": "\(user.id)"])
        return JSONResponse.make(status: .created, UserJSON(user: user))
    }
}
