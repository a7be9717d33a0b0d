import Foundation
import HubLauncher
import Hummingbird
import Testing
import TestSupport

/// Photos are checked by their bytes and size and stored under names the server picks; `/media/`
/// serves those names and nothing else.
@Suite("Uploads and media files", MachineLoad.shared, .timeLimit(.minutes(4)))
struct UploadTests {
    static let png = HTTPRoutesTests.png
    static let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xD9]
    static let webp: [UInt8] = Array("RIFF".utf8) + [26, 0, 0, 0] + Array("WEBPVP8 ".utf8) + [14, 0, 0, 0] + Array(repeating: 0, count: 14)

    static func signUp(_ hub: LiveHub, _ username: String, photo: [UInt8], filename: String = "photo.png") async throws
        -> LiveHub.HTTPResult
    {
        let fields = [
            ("username", username), ("password1", LiveHub.password), ("password2", LiveHub.password), ("group", "rider"),
        ]
        var body = HTTPRoutesTests.multipart(fields, photo: nil)
        // The photo part with a hostile file name, before the closing boundary.
        body.moveWriterIndex(to: body.writerIndex - "--TaxiHubBoundary--\r\n".utf8.count)
        body.writeString(
            "--TaxiHubBoundary\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"\(filename)\"\r\nContent-Type: image/png\r\n\r\n"
        )
        body.writeBytes(photo)
        body.writeString("\r\n--TaxiHubBoundary--\r\n")
        return try await hub.request(
            "/api/sign_up/", method: .post, headers: [.contentType: "multipart/form-data; boundary=TaxiHubBoundary"], body: body
        )
    }

    static func photos(_ hub: LiveHub) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: hub.directory.appendingPathComponent("media/photos").path)) ?? []
    }

    @Test("PNG, JPEG and WebP are stored under a server-chosen name, whatever the file was called")
    func acceptedFormats() async throws {
        try await LiveHub.routes { hub in
            for (index, (bytes, ext)) in [(Self.png, "png"), (Self.jpeg, "jpg"), (Self.webp, "webp")].enumerated() {
                let response = try await Self.signUp(hub, "u\(index)", photo: bytes, filename: "../../../etc/evil.\(ext)")
                #expect(response.status == .created, "\(ext): \(String(buffer: response.body))")
                let photo = try #require(try parseJSONObject(String(buffer: response.body))["photo"] as? String)
                #expect(MediaPathPattern.matches(photo, ext: ext), "\(photo)")
                let served = try await hub.request(photo)
                #expect(served.status == .ok)
                #expect(Array(served.body.readableBytesView) == bytes)
            }
            #expect(Self.photos(hub).count == 3)
        }
    }

    @Test("GIF, a bare PNG signature, text and empty files are refused and nothing is stored", arguments: [
        ("gif", Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0]),
        ("png signature only", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
        ("text", Array("<svg xmlns='http://www.w3.org/2000/svg'></svg>".utf8)),
        ("empty", []),
    ])
    func refusedFormats(kind: String, bytes: [UInt8]) async throws {
        try await LiveHub.routes { hub in
            let response = try await Self.signUp(hub, "refused", photo: bytes)
            #expect(response.status == .badRequest, "\(kind)")
            #expect(String(buffer: response.body).contains("Upload a valid image"), "\(kind)")
            #expect(Self.photos(hub).isEmpty)
            #expect(try await hub.request("/api/log_in/", method: .post, json: ["username": "refused", "password": LiveHub.password]).status == .unauthorized)
        }
    }

    @Test("a photo over maxPhotoSize is refused with the limit, and nothing is stored")
    func photoSizeLimit() async throws {
        try await LiveHub.routes { $0.maxPhotoSize = 1000 } _: { hub in
            let large = Self.png + Array(repeating: 0, count: 1000)
            let response = try await Self.signUp(hub, "big", photo: large)
            #expect(response.status == .badRequest)
            #expect(try parseJSONObject(String(buffer: response.body))["photo"] as? [String] == ["The photo is larger than 1000 bytes."])
            #expect(Self.photos(hub).isEmpty)
            #expect(try await Self.signUp(hub, "small", photo: Self.png).status == .created)
        }
    }

    @Test("/media/ cannot leave its folder: dot-dot, encoded slashes, NUL, other names and symbolic links get 404")
    func mediaStaysInItsFolder() async throws {
        try await LiveHub.routes { hub in
            let photo = try #require(
                try parseJSONObject(String(buffer: try await Self.signUp(hub, "owner", photo: Self.png).body))["photo"] as? String
            )
            let secret = try String(contentsOf: hub.directory.appendingPathComponent("data/taxihub.sqlite"), encoding: .isoLatin1)
            let photos = hub.directory.appendingPathComponent("media/photos")
            let linked = UUID().uuidString.lowercased() + ".png"
            try FileManager.default.createSymbolicLink(
                atPath: photos.appendingPathComponent(linked).path, withDestinationPath: hub.directory.appendingPathComponent("data/taxihub.sqlite").path
            )
            try Data(Self.png).write(to: photos.appendingPathComponent("notes.png"))
            let name = String(photo.dropFirst("/media/photos/".count))
            for path in [
                "/media/../data/taxihub.sqlite", "/media/%2e%2e/data/taxihub.sqlite", "/media/photos/..%2f..%2fdata%2ftaxihub.sqlite",
                "/media/photos%2f..%2f..%2fdata%2ftaxihub.sqlite", "/media/photos/\(name)%00.png", "/media/photos/\(name)/",
                "/media/photos/\(linked)", "/media/photos/notes.png", "/media/photos/\(name.uppercased())", "/media/photos/",
                "/media/", "/media/photos/\(name).png",
            ] {
                let response = try await hub.request(path)
                #expect(response.status == .notFound || response.status == .badRequest, "\(path): \(response.status)")
                #expect(response.body.readableBytes < 200 && !secret.hasPrefix(String(buffer: response.body)), "\(path)")
            }
            #expect(try await hub.request(photo).status == .ok)
            #expect(try await hub.request(photo, method: .post).status != .ok)
        }
    }
}

/// What a stored photo's URL looks like: `/media/photos/<lowercase uuid>.<ext>`.
enum MediaPathPattern {
    static func matches(_ url: String, ext: String) -> Bool {
        guard url.hasPrefix("/media/photos/"), url.hasSuffix("." + ext) else { return false }
        let id = url.dropFirst("/media/photos/".count).dropLast(ext.count + 1)
        return UUID(uuidString: String(id)).map { $0.uuidString.lowercased() == id } == true
    }
}
