import Foundation
import Hummingbird
import Logging

/// Serves uploaded photos at `/media/photos/<uuid>.<ext>` and nothing else: only names the
/// server chose can be asked for, so no path (`..`, encoded slashes, NUL) can leave the media
/// folder, and a name that is a symbolic link rather than a regular file is not followed.
struct MediaMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext

    static let prefix = "/media/"

    private let mediaDirectory: String
    private let files: FileMiddleware<HubRequestContext, LocalFileSystem>

    init(mediaDirectory: String, logger: Logger) {
        self.mediaDirectory = mediaDirectory
        files = FileMiddleware(mediaDirectory, urlBasePath: "/media", logger: logger)
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix(Self.prefix) else { return try await next(request, context) }
        guard request.method == .get || request.method == .head, let name = Self.photoName(inPath: path),
            isRegularFile(mediaDirectory + "/photos/" + name)
        else {
            throw APIError.notFound
        }
        return try await files.handle(request, context: context, next: next)
    }

    /// `<uuid>.<ext>` when `path` is `/media/photos/<uuid>.<ext>` exactly, as `PhotoStore` names
    /// files (lowercase UUID, a served extension); nil for anything else.
    static func photoName(inPath path: String) -> String? {
        guard path.hasPrefix(prefix + "photos/") else { return nil }
        let name = path.dropFirst((prefix + "photos/").count)
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, PhotoStore.servedExtensions.contains(String(parts[1])),
            let id = UUID(uuidString: String(parts[0])), id.lowercasedText == parts[0]
        else { return nil }
        return String(name)
    }

    /// A regular file, not a symbolic link (`lstat` does not follow it) nor anything else.
    private func isRegularFile(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }
}
