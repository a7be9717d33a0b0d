import Foundation
import Hub
import Hummingbird
import Logging

/// `POST /api/sign_up/`, `/api/log_in/` and `/api/token/refresh/`.
struct AuthController: Sendable {
    let users: UserDirectory
    /// In a cluster, sign-ups are checked across the nodes and log-ins find users of other nodes.
    let cluster: (any ClusterAccounts)?
    let tokens: TokenService
    let passwords: PasswordHasher
    let photos: PhotoStore
    let maxUploadSize: Int
    let maxPhotoSize: Int
    let throttle: LoginThrottle
    let metrics: HubMetrics

    func addRoutes(to router: Router<HubRequestContext>) {
        router.post("/api/sign_up/") { request, context in try await signUp(request, context) }
        router.post("/api/log_in/") { request, context in try await logIn(request, context) }
        router.post("/api/token/refresh/") { request, _ in try await refresh(request) }
    }

    /// The reference's username rule (Django's `UnicodeUsernameValidator`).
    static func isValidUsername(_ username: String) -> Bool {
        !username.isEmpty && username.count <= 150
            && username.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil || "@.+-_".unicodeScalars.contains($0) }
    }

    private func signUp(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let form = try await FormBody.read(request, limit: maxUploadSize)
        var errors = form.typeErrors
        func required(_ key: String) -> String? {
            guard let value = form.fields[key], !value.isEmpty else {
                if errors[key] == nil { errors[key] = [form.fields[key] == nil ? "This field is required." : "This field may not be blank."] }
                return nil
            }
            return value
        }
        let username = required("username")
        let password1 = required("password1")
        let password2 = required("password2")
        let groupName = required("group")
        if let problem = password1.flatMap(PasswordRules.problem(with:)) {
            errors["password1"] = [problem]
        }
        let firstName = form.fields["first_name"] ?? ""
        let lastName = form.fields["last_name"] ?? ""
        if let username, !Self.isValidUsername(username) {
            errors["username"] = [
                "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
            ]
        } else if let username, users.user(username: username) != nil {
            errors["username"] = ["A user with that username already exists."]
        }
        for (key, value) in [("first_name", firstName), ("last_name", lastName)] where value.count > 150 {
            errors[key] = ["Ensure this field has no more than 150 characters."]
        }
        let group = groupName.flatMap(UserGroup.init(rawValue:)).flatMap { UserGroup.signUpChoices.contains($0) ? $0 : nil }
        if let groupName, group == nil {
            errors["group"] = ["\"\(groupName)\" is not a valid choice."]
        }
        var photoFormat: PhotoStore.Format?
        if let photo = form.files["photo"], photo.bytes.readableBytes > maxPhotoSize {
            errors["photo"] = ["The photo is larger than \(maxPhotoSize) bytes."]
        } else if let photo = form.files["photo"] {
            photoFormat = PhotoStore.Format(sniffing: photo.bytes)
            if photoFormat == nil {
                errors["photo"] = [
                    "Upload a valid image. The file you uploaded was either not an image or a corrupted image."
                ]
            }
        } else if form.fields["photo"].map({ !$0.isEmpty }) == true {
            errors["photo"] = ["The submitted data was not a file. Check the encoding type on the form."]
        }
        guard errors.isEmpty, let username, let password1, let password2, let group else {
            throw APIError.fields(errors)
        }
        guard password1 == password2 else {
            throw APIError.fields(["non_field_errors": ["Passwords must match."]])
        }
        let hash = try await passwords.hash(password1)
        var photoPath: String?
        if let photo = form.files["photo"], let photoFormat {
            photoPath = try await photos.save(photo.bytes, format: photoFormat)
        }
        let created =
            if let cluster {
                try await cluster.signUp(
                    username: username, firstName: firstName, lastName: lastName, group: group, photo: photoPath, passwordHash: hash
                )
            } else {
                try await signUpDurably(
                    username: username, firstName: firstName, lastName: lastName, group: group, photo: photoPath, passwordHash: hash
                )
            }
        guard let user = created else {
            throw APIError.fields(["username": ["A user with that username already exists."]])
        }
        context.logger.info("user signed up", metadata: ["user.id": "\(user.id)", "user.group": "\(user.group.rawValue)"])
        return JSONResponse.make(status: .created, UserJSON(user: user))
    }

    /// `UserDirectory.signUp`, with a failed commit as a 503.
    private func signUpDurably(
        username: String, firstName: String, lastName: String, group: UserGroup, photo: String?, passwordHash: String
    ) async throws -> User? {
        do {
            return try await users.signUp(
                username: username, firstName: firstName, lastName: lastName, group: group, photo: photo, passwordHash: passwordHash
            )
        } catch {
            throw APIError.notDurable(error)
        }
    }

    private func logIn(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let form = try await FormBody.read(request, limit: 64 * 1024)
        var errors = form.typeErrors
        for key in ["username", "password"] where (form.fields[key] ?? "").isEmpty && errors[key] == nil {
            errors[key] = [form.fields[key] == nil ? "This field is required." : "This field may not be blank."]
        }
        guard errors.isEmpty, let username = form.fields["username"], let password = form.fields["password"] else {
            throw APIError.fields(errors)
        }
        // Refused before any bcrypt work, so a flood of guesses costs the hub next to nothing.
        if let refusal = throttle.admit(address: context.remoteAddress?.ipAddress, username: username) {
            metrics.loginThrottled(scope: refusal.scope.rawValue)
            var error = APIError.detail(
                .tooManyRequests, "Too many log-in attempts; try again in \(refusal.retryAfter) seconds.", code: "throttled"
            )
            error.headers[.retryAfter] = String(refusal.retryAfter)
            throw error
        }
        let known = if let user = users.user(username: username) { user } else { await cluster?.findUser(username: username) }
        guard let user = known, try await passwords.verify(password, against: user.passwordHash) else {
            throttle.failed(username: username)
            throw APIError.detail(.unauthorized, "No active account found with the given credentials")
        }
        let access = try await tokens.accessToken(for: user)
        let refresh = try await tokens.refreshToken(for: user)
        return JSONResponse.make(["access": access, "refresh": refresh])
    }

    private func refresh(_ request: Request) async throws -> Response {
        let form = try await FormBody.read(request, limit: 64 * 1024)
        guard let token = form.fields["refresh"], !token.isEmpty else {
            throw APIError.fields(form.typeErrors.isEmpty ? ["refresh": ["This field is required."]] : form.typeErrors)
        }
        guard let id = await tokens.verifyRefresh(token), let user = users.user(id: id) else {
            throw APIError.detail(.unauthorized, "Token is invalid or expired", code: "token_not_valid")
        }
        return JSONResponse.make(["access": try await tokens.accessToken(for: user)])
    }
}
