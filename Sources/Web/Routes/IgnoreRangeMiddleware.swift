import Hummingbird

/// Serves files whole: drops a request's `Range` header and the `Accept-Ranges: bytes` that
/// Hummingbird's `FileMiddleware` advertises, for the browser client's files and `/media/`.
///
/// `FileMiddleware` (Hummingbird 2.28.1) answers a range that starts past the end of the file,
/// e.g. `Range: bytes=5000-6000` on a 1,479-byte file, with `206` and `Content-Length: -3521`,
/// a response no client can read. The files served here are small, so ranges buy nothing;
/// HTTP lets a server ignore `Range` and send the whole file with `200` (RFC 9110 §14.2).
struct IgnoreRangeMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        if request.headers[.range] != nil {
            var head = request.head
            head.headerFields[.range] = nil
            request = Request(head: head, body: request.body)
        }
        var response = try await next(request, context)
        if response.headers[.acceptRanges] != nil {
            response.headers[.acceptRanges] = nil
        }
        return response
    }
}
