import Hummingbird

/// Lets the browser pages of the configured origins (`corsOrigins`) call the API from another
/// origin; for any other origin the hub adds no CORS header, so browsers keep their same-origin
/// rule. The headers themselves come from Hummingbird's `CORSMiddleware`.
struct CORSPolicyMiddleware<Context: RequestContext>: RouterMiddleware {
    private let origins: Set<String>
    private let cors = CORSMiddleware<Context>(
        allowOrigin: .originBased, allowHeaders: [.accept, .authorization, .contentType], allowMethods: [.get, .post, .head, .options],
        maxAge: .seconds(600)
    )

    init(origins: [String]) {
        self.origins = Set(origins)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], origins.contains(origin) else {
            return try await next(request, context)
        }
        return try await cors.handle(request, context: context, next: next)
    }
}
