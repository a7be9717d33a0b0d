import Foundation
import HubLauncher
import Hummingbird
import Testing
import TestSupport

/// The REST half of the compatible API: what the reference's `test_http.py` checks, plus the
/// DRF-style errors for bad input. Requests go to the router (`LiveHub.routes`); the tests that
/// create trips over a WebSocket, or read health and metrics beside one, use a live hub.
@Suite("HTTP routes", MachineLoad.shared, .timeLimit(.minutes(4)))
struct HTTPRoutesTests {
    /// A 1×1 PNG.
    static let png: [UInt8] = Array(
        Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")!
    )

    static func multipart(_ fields: [(String, String)], photo: [UInt8]?, boundary: String = "TaxiHubBoundary") -> ByteBuffer {
        var body = ByteBuffer()
        for (name, value) in fields {
            body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n")
        }
        if let photo {
            body.writeString(
                "--\(boundary)\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"photo.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            body.writeBytes(photo)
            body.writeString("\r\n")
        }
        body.writeString("--\(boundary)--\r\n")
        return body
    }

    static let signUpFields = [
        ("username", "user@example.com"), ("first_name", "Test"), ("last_name", "User"),
        ("password1", LiveHub.password), ("password2", LiveHub.password), ("group", "rider"),
    ]

    @Test("sign up with a photo (multipart) returns the user and serves the photo")
    func signUpWithPhoto() async throws {
        try await LiveHub.routes { hub in
            let response = try await hub.request(
                "/api/sign_up/", method: .post, headers: [.contentType: "multipart/form-data; boundary=TaxiHubBoundary"],
                body: Self.multipart(Self.signUpFields, photo: Self.png)
            )
            #expect(response.status == .created)
            let user = try parseJSONObject(String(buffer: response.body))
            #expect(user["id"] as? Int == 1)
            #expect(user["username"] as? String == "user@example.com")
            #expect(user["first_name"] as? String == "Test")
            #expect(user["last_name"] as? String == "User")
            #expect(user["group"] as? String == "rider")
            #expect(user["password1"] == nil && user["password"] == nil)
            let photo = try #require(user["photo"] as? String)
            #expect(photo.hasPrefix("/media/photos/") && photo.hasSuffix(".png"))
            let served = try await hub.request(photo)
            #expect(served.status == .ok)
            #expect(Array(served.body.readableBytesView) == Self.png)
            #expect(try await hub.request("/media/photos/missing.png").status == .notFound)
        }
    }

    @Test("sign up with JSON and no photo")
    func signUpJSON() async throws {
        try await LiveHub.routes { hub in
            let user = try await hub.signUp("driver@example.com", group: "driver")
            #expect(user["group"] as? String == "driver")
            #expect(user["photo"] is NSNull)
            let second = try await hub.signUp("rider@example.com")
            #expect((second["id"] as? Int ?? 0) > (user["id"] as? Int ?? 0))
        }
    }

    @Test("bad sign-ups get 400 with field errors and create nothing")
    func badSignUps() async throws {
        try await LiveHub.routes { hub in
            _ = try await hub.signUp("taken@example.com")
            let base: [String: Any] = [
                "username": "new@example.com", "password1": LiveHub.password, "password2": LiveHub.password, "group": "rider",
            ]
            let cases: [([String: Any], String, String)] = [
                (base.merging(["password2": "different"]) { $1 }, "non_field_errors", "Passwords must match."),
                (base.merging(["username": "taken@example.com"]) { $1 }, "username", "A user with that username already exists."),
                (base.filter { $0.key != "username" }, "username", "This field is required."),
                (base.filter { $0.key != "password1" }, "password1", "This field is required."),
                (base.merging(["group": "pilot"]) { $1 }, "group", "\"pilot\" is not a valid choice."),
                (base.merging(["username": "has spaces"]) { $1 }, "username", "Enter a valid username."),
                (base.merging(["username": 42]) { $1 }, "username", "Not a valid string."),
            ]
            for (body, field, message) in cases {
                let response = try await hub.request("/api/sign_up/", method: .post, json: body)
                #expect(response.status == .badRequest, "\(body)")
                let errors = try parseJSONObject(String(buffer: response.body))
                let messages = try #require(errors[field] as? [String], "\(errors)")
                #expect(messages.contains { $0.hasPrefix(message) }, "\(messages)")
            }
            let notImage = try await hub.request(
                "/api/sign_up/", method: .post, headers: [.contentType: "multipart/form-data; boundary=TaxiHubBoundary"],
                body: Self.multipart(Self.signUpFields, photo: Array("not an image".utf8))
            )
            #expect(notImage.status == .badRequest)
            #expect(try parseJSONObject(String(buffer: notImage.body))["photo"] != nil)
            for garbage in ["{not json", "[1,2]"] {
                let response = try await hub.request(
                    "/api/sign_up/", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: garbage)
                )
                #expect(response.status == .badRequest)
            }
            // Only the first user exists: logging in as any of the rejected names fails.
            let login = try await hub.request("/api/log_in/", method: .post, json: ["username": "new@example.com", "password": LiveHub.password])
            #expect(login.status == .unauthorized)
        }
    }

    @Test("log in returns access and refresh tokens carrying the user's claims")
    func logInClaims() async throws {
        try await LiveHub.routes { hub in
            let user = try await hub.signUp("user@example.com", firstName: "Ada", lastName: "Lovelace")
            let tokens = try await hub.logIn("user@example.com")
            let access = try jwtPayload(tokens.access)
            #expect(access["token_type"] as? String == "access")
            #expect(access["id"] as? Int == user["id"] as? Int)
            #expect(access["username"] as? String == "user@example.com")
            #expect(access["first_name"] as? String == "Ada")
            #expect(access["last_name"] as? String == "Lovelace")
            #expect(access["group"] as? String == "rider")
            #expect(access["photo"] is NSNull)
            #expect(access["jti"] is String)
            let iat = try #require(access["iat"] as? Int)
            let exp = try #require(access["exp"] as? Int)
            #expect(exp - iat == 3600)
            let refresh = try jwtPayload(tokens.refresh)
            #expect(refresh["token_type"] as? String == "refresh")
            #expect(refresh["id"] as? Int == user["id"] as? Int)
            #expect((refresh["exp"] as? Int ?? 0) - (refresh["iat"] as? Int ?? 0) == 86400)
            // Form-encoded log-in works too.
            let form = try await hub.request(
                "/api/log_in/", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "username=user%40example.com&password=\(LiveHub.password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            )
            #expect(form.status == .ok)
        }
    }

    @Test("wrong credentials get 401, missing ones 400")
    func badLogIn() async throws {
        try await LiveHub.routes { hub in
            _ = try await hub.signUp("user@example.com")
            for body in [["username": "user@example.com", "password": "wrong"], ["username": "nobody", "password": "x"]] {
                let response = try await hub.request("/api/log_in/", method: .post, json: body)
                #expect(response.status == .unauthorized)
                #expect(
                    try parseJSONObject(String(buffer: response.body))["detail"] as? String
                        == "No active account found with the given credentials"
                )
            }
            let missing = try await hub.request("/api/log_in/", method: .post, json: ["username": "user@example.com"])
            #expect(missing.status == .badRequest)
            #expect(try parseJSONObject(String(buffer: missing.body))["password"] != nil)
        }
    }

    @Test("a refresh token buys a new access token; anything else gets 401 token_not_valid")
    func refresh() async throws {
        try await LiveHub.routes { hub in
            let account = try await hub.account("user@example.com")
            let response = try await hub.request("/api/token/refresh/", method: .post, json: ["refresh": account.refresh])
            #expect(response.status == .ok)
            let access = try #require(try parseJSONObject(String(buffer: response.body))["access"] as? String)
            #expect(try jwtPayload(access)["id"] as? Int == account.id)
            #expect(try await hub.request("/api/trip/", token: access).status == .ok)
            for bad in [account.access, "garbage", String(account.refresh.dropLast(3)) + "abc"] {
                let refused = try await hub.request("/api/token/refresh/", method: .post, json: ["refresh": bad])
                #expect(refused.status == .unauthorized)
                #expect(try parseJSONObject(String(buffer: refused.body))["code"] as? String == "token_not_valid")
            }
            #expect(try await hub.request("/api/token/refresh/", method: .post, json: [:] as [String: String]).status == .badRequest)
        }
    }

    @Test("trip list and detail follow the visibility rules")
    func tripVisibility() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let otherRider = try await hub.account("other@example.com")
            let driver = try await hub.account("driver@example.com", group: "driver")
            let otherDriver = try await hub.account("driver2@example.com", group: "driver")
            let riderSocket = try await hub.connect(rider)
            let otherSocket = try await hub.connect(otherRider)
            let a = try #require(try await hub.requestTrip(rider, on: riderSocket, from: "A", to: "B")["id"] as? String)
            let b = try #require(try await hub.requestTrip(rider, on: riderSocket, from: "B", to: "C")["id"] as? String)
            let c = try #require(try await hub.requestTrip(otherRider, on: otherSocket, from: "C", to: "D")["id"] as? String)
            let driverSocket = try await hub.connect(driver)
            driverSocket.send(["type": "update.trip", "data": ["id": a, "status": "STARTED", "driver": driver.id]])
            _ = try await driverSocket.receiveJSON()

            func ids(_ account: LiveHub.Account) async throws -> Set<String> {
                Set(try await hub.trips(account).compactMap { $0["id"] as? String })
            }
            #expect(try await ids(rider) == [a, b])
            #expect(try await ids(otherRider) == [c])
            #expect(try await ids(driver) == [a, b, c])
            #expect(try await ids(otherDriver) == [b, c], "a taken trip leaves other drivers' lists")

            let detail = try await hub.request("/api/trip/\(a)/", token: rider.access)
            #expect(detail.status == .ok)
            let trip = try parseJSONObject(String(buffer: detail.body))
            #expect(trip["id"] as? String == a)
            #expect((trip["driver"] as? [String: Any])?["username"] as? String == driver.username)
            #expect(trip["created"] is String && trip["updated"] is String)
            #expect(try await hub.request("/api/trip/\(a)/", token: otherRider.access).status == .notFound)
            #expect(try await hub.request("/api/trip/\(a)/", token: otherDriver.access).status == .notFound)
            #expect(try await hub.request("/api/trip/not-a-uuid/", token: rider.access).status == .notFound)
            #expect(try await hub.request("/api/trip/").status == .unauthorized)
            #expect(try await hub.request("/api/trip/", token: "garbage").status == .unauthorized)
            for socket in [riderSocket, otherSocket, driverSocket] { await socket.close() }
        }
    }

    @Test("health, readiness and metrics answer")
    func healthAndMetrics() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("rider@example.com")
            let socket = try await hub.connect(rider)
            _ = try await hub.requestTrip(rider, on: socket)
            socket.send("garbage")
            _ = try await socket.receive()
            #expect(try await hub.request("/healthz").status == .ok)
            let ready = try await hub.request("/readyz")
            #expect(ready.status == .ok)
            #expect(try parseJSONObject(String(buffer: ready.body))["status"] as? String == "ready")
            let metrics = String(buffer: try await hub.request("/metrics").body)
            #expect(metrics.contains("taxihub_connections_open 1"))
            #expect(metrics.contains(#"taxihub_messages_in_total{type="create.trip"} 1"#))
            #expect(metrics.contains(#"taxihub_errors_total{code="bad_message"} 1"#))
            #expect(metrics.contains(#"taxihub_trips{status="REQUESTED"} 1"#))
            #expect(metrics.contains("taxihub_snapshot_lag_seconds"))
            await socket.close()
        }
    }
}
