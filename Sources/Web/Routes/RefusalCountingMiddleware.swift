import Hummingbird

/// Counts every HTTP answer of 400 and above in `/metrics` by status
/// (`taxihub_http_refusals_total{status}`), whether a route returned it or threw it, so an
/// operator sees bad input, auth failures and throttling as they happen. Outermost middleware:
/// it sees the answers of the others and of unknown paths too.
struct RefusalCountingMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let metrics: HubMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            if response.status.code >= 400 { metrics.httpRefused(status: response.status.code) }
            return response
        } catch let error as any HTTPResponseError {
            metrics.httpRefused(status: error.status.code)
            throw error
        } catch {
            metrics.httpRefused(status: 500)
            throw error
        }
    }
}
