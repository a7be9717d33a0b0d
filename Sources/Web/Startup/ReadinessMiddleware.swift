import Hummingbird

/// Answers API calls with 503 until the hub's state is loaded; health, readiness and metrics
/// always answer, so operators can see why.
struct ReadinessMiddleware<Context: RequestContext>: RouterMiddleware {
    let startup: HubStartup
    static var alwaysServed: Set<String> { ["/healthz", "/readyz", "/metrics"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard startup.isReady || Self.alwaysServed.contains(request.uri.path) else {
            throw APIError.detail(.serviceUnavailable, "The hub is loading its state from the store; try again shortly.")
        }
        return try await next(request, context)
    }
}
