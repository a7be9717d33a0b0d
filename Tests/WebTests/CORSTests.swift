import Foundation
import HubLauncher
import Hummingbird
import Testing
import TestSupport

/// Cross-origin calls: none by default; the listed origins only when `corsOrigins` is set.
@Suite("CORS", MachineLoad.shared, .timeLimit(.minutes(2)))
struct CORSTests {
    static let preflight: HTTPFields = [.origin: "https://app.example.com", .accessControlRequestMethod: "GET"]

    @Test("by default no origin gets CORS headers: browsers keep the same-origin rule")
    func sameOriginByDefault() async throws {
        try await LiveHub.routes { hub in
            let options = try await hub.request("/api/trip/", method: .options, headers: Self.preflight)
            #expect(options.headers[.accessControlAllowOrigin] == nil)
            let get = try await hub.request("/api/client/", headers: [.origin: "https://app.example.com"])
            #expect(get.status == .ok)
            #expect(get.headers[.accessControlAllowOrigin] == nil)
        }
    }

    @Test("a listed origin gets preflights and answers with its CORS headers; any other origin none")
    func listedOrigins() async throws {
        try await LiveHub.routes { $0.corsOrigins = ["https://app.example.com", "http://localhost:3000"] } _: { hub in
            let options = try await hub.request("/api/trip/", method: .options, headers: Self.preflight)
            #expect(options.status == .noContent)
            #expect(options.headers[.accessControlAllowOrigin] == "https://app.example.com")
            #expect(options.headers[.accessControlAllowHeaders]?.lowercased().contains("authorization") == true)
            let get = try await hub.request("/api/client/", headers: [.origin: "http://localhost:3000"])
            #expect(get.headers[.accessControlAllowOrigin] == "http://localhost:3000")
            let other = try await hub.request("/api/client/", headers: [.origin: "https://evil.example"])
            #expect(other.status == .ok)
            #expect(other.headers[.accessControlAllowOrigin] == nil)
            let otherPreflight = try await hub.request(
                "/api/trip/", method: .options, headers: [.origin: "https://evil.example", .accessControlRequestMethod: "GET"]
            )
            #expect(otherPreflight.headers[.accessControlAllowOrigin] == nil)
        }
    }
}
