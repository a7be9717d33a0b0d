import Foundation
import Hummingbird
import NIOPosix

/// Saves uploaded profile photos under `<media>/photos/` with a name the server chooses, after
/// checking by their bytes that they are PNG, JPEG or WebP images.
struct PhotoStore: Sendable {
    let mediaDirectory: String

    /// The image formats a photo may have, told apart by their first bytes.
    enum Format: String, CaseIterable {
        case png, jpg, webp

        init?(sniffing bytes: ByteBuffer) {
            let head = Array(bytes.readableBytesView.prefix(16))
            if head.count == 16, head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
                Array(head[12..<16]) == Array("IHDR".utf8)
            {
                self = .png
            } else if head.count >= 4, head.starts(with: [0xFF, 0xD8, 0xFF]) {
                self = .jpg
            } else if head.count == 16, head.starts(with: Array("RIFF".utf8)), Array(head[8..<15]) == Array("WEBPVP8".utf8) {
                self = .webp
            } else {
                return nil
            }
        }
    }

    /// Extensions of the files `/media/` serves: the formats saved now, and GIF, which earlier
    /// versions accepted.
    static let servedExtensions = Set(Format.allCases.map(\.rawValue) + ["gif"])

    /// Writes the photo and returns its path relative to the media folder (`photos/<uuid>.png`).
    func save(_ bytes: ByteBuffer, format: Format) async throws -> String {
        let relative = "photos/\(UUID().lowercasedText).\(format.rawValue)"
        let directory = URL(fileURLWithPath: mediaDirectory).appendingPathComponent("photos")
        let target = URL(fileURLWithPath: mediaDirectory).appendingPathComponent(relative)
        let data = Data(bytes.readableBytesView)
        try await NIOThreadPool.singleton.runIfActive {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try data.write(to: target, options: .atomic)
        }
        return relative
    }
}
