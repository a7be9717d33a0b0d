import Foundation
import Hummingbird
import NIOPosix

/// Saves uploaded profile photos under `<media>/photos/` with a fresh name, after checking
/// that the bytes are an image.
struct PhotoStore: Sendable {
    let mediaDirectory: String

    enum Format: String {
        case png, jpg, gif, webp

        init?(sniffing bytes: ByteBuffer) {
            let head = Array(bytes.readableBytesView.prefix(12))
            if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
                self = .png
            } else if head.starts(with: [0xFF, 0xD8, 0xFF]) {
                self = .jpg
            } else if head.starts(with: Array("GIF8".utf8)) {
                self = .gif
            } else if head.count == 12, head.starts(with: Array("RIFF".utf8)), Array(head[8..<12]) == Array("WEBP".utf8) {
                self = .webp
            } else {
                return nil
            }
        }
    }

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
