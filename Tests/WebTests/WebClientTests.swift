import Foundation
import HubLauncher
import Hummingbird
import Testing
import Web
import TestSupport

/// The browser client's files at `/` and `GET /api/client/` (docs/protocol.md §5.2–5.3).
@Suite("Browser client files", MachineLoad.shared, .timeLimit(.minutes(4)))
struct WebClientTests {
    /// A client folder with an index, a module, and files named like API paths.
    static func makeWebRoot() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-web-\(UUID().uuidString)")
        for (path, text) in [
            ("index.html", "<!doctype html><title>TaxiHub</title>"), ("js/app.js", "export const app = 1;"),
            ("healthz", "shadow"), ("api/client/index.html", "shadow"),
        ] {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        return root
    }

    @Test("the client is served at / with an ETag and no-cache, and 304 when unchanged")
    func servesTheClient() async throws {
        let root = try Self.makeWebRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        try await LiveHub.routes { $0.webRoot = root.path } _: { hub in
            let index = try await hub.request("/")
            #expect(index.status == .ok)
            #expect(String(buffer: index.body).contains("<title>TaxiHub</title>"))
            let head = try await hub.request("/").headers
            #expect(head[.contentType]?.hasPrefix("text/html") == true)
            #expect(head[.cacheControl] == "no-cache")
            let etag = try #require(head[.eTag])
            let again = try await hub.request("/", headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified)
            #expect(again.body.readableBytes == 0)
            let module = try await hub.request("/js/app.js").headers
            #expect(module[.contentType]?.contains("javascript") == true)
            #expect(try await hub.request("/js/missing.js").status == .notFound)
            #expect(try await hub.request("/../data/jwt-secret").status != .ok)
        }
    }

    @Test("files are served whole: Range is ignored (a range past the end once got a negative Content-Length)")
    func rangesAreIgnored() async throws {
        let root = try Self.makeWebRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        try await LiveHub.routes { $0.webRoot = root.path } _: { hub in
            for range in ["bytes=5000-6000", "bytes=0-3", "bytes=abc"] {
                let response = try await hub.request("/index.html", headers: [.range: range])
                #expect(response.status == .ok, "Range: \(range)")
                #expect(String(buffer: response.body) == "<!doctype html><title>TaxiHub</title>", "Range: \(range)")
                #expect(response.headers[.acceptRanges] == nil && response.headers[.contentRange] == nil)
            }
        }
    }

    @Test("a NUL in a file path is not cut short: /index.html%00 is 404, not index.html")
    func nulInPath() async throws {
        let root = try Self.makeWebRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        try await LiveHub.routes { $0.webRoot = root.path } _: { hub in
            for path in ["/index.html%00", "/js%00", "/js%00/app.js", "/%00"] {
                let response = try await hub.request(path)
                #expect(response.status == .notFound, "\(path)")
            }
            let index = try await hub.request("/index.html")
            #expect(index.status == .ok)
        }
    }

    @Test("no file shadows the API's paths")
    func apiPathsAreNotShadowed() async throws {
        let root = try Self.makeWebRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        try await LiveHub.routes { $0.webRoot = root.path } _: { hub in
            #expect(String(buffer: try await hub.request("/healthz").body) == #"{"status":"ok"}"#)
            let client = try parseJSONObject(String(buffer: try await hub.request("/api/client/").body))
            #expect(client["tile_url"] as? String == HubConfiguration().tileURL)
        }
    }

    @Test("GET /api/client/ gives the configured tile URL, empty for the plain map")
    func tileURL() async throws {
        try await LiveHub.routes { $0.tileURL = "" } _: { hub in
            let response = try await hub.request("/api/client/")
            #expect(response.status == .ok)
            #expect(try parseJSONObject(String(buffer: response.body))["tile_url"] as? String == "")
        }
    }

    @Test("the files built into the binary are the browser client")
    func bundledClient() async throws {
        try await LiveHub.routes { hub in
            let index = try await hub.request("/")
            #expect(index.status == .ok)
            let html = String(buffer: index.body)
            #expect(html.contains("js/app.js"))
            for path in ["/js/app.js", "/js/api.js", "/js/socket.js", "/js/map.js", "/styles.css"] {
                #expect(try await hub.request(path).status == .ok, "\(path)")
            }
        }
    }
}
