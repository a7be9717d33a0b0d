import Foundation
import Hummingbird
import Logging

/// Serves the browser client's files at `/` (docs/web-client.md). Paths of the API are left to
/// the router untouched, so no file can shadow them. Every file answer says `no-cache`: browsers
/// ask again each time, and get `304 Not Modified` for the `ETag` they hold.
struct WebClientMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext

    /// Paths that belong to the API, never to a file.
    static let apiPrefixes = ["/api/", "/taxi/", "/media/", "/bench/", "/healthz", "/readyz", "/metrics"]

    private let files: FileMiddleware<HubRequestContext, LocalFileSystem>

    init(root: String, logger: Logger) {
        files = FileMiddleware(root, searchForIndexHtml: true, logger: logger)
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        guard request.method == .get || request.method == .head, !Self.apiPrefixes.contains(where: { path.hasPrefix($0) }) else {
            return try await next(request, context)
        }
        // A NUL (`%00`) would cut the file name short where the file system reads it, so
        // `/index.html%00` served index.html and `/js%00` redirected to a mangled `/js /`.
        guard !(path.removingPercentEncoding ?? path).contains("\0") else {
            return try await next(request, context)
        }
        var response = try await files.handle(request, context: context, next: next)
        if response.headers[.eTag] != nil {
            response.headers[.cacheControl] = "no-cache"
        }
        return response
    }

    /// The folder of the client's files: `webRoot` when set, else the copy built into the
    /// binary's resources (next to the executable); nil when neither exists.
    static func root(configured: String?) -> String? {
        if let configured { return configured }
        let bundled = Bundle.main.bundleURL.appendingPathComponent("taxi-hub_Web.resources/Public").path
        return FileManager.default.fileExists(atPath: bundled) ? bundled : nil
    }
}
