import Hub
import Hummingbird

/// An HTTP error with a Django REST Framework–style JSON body, e.g. `{"detail": "Not found."}`
/// or `{"username": ["This field is required."]}`.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let body: String
    /// Headers the answer carries besides `Content-Type` (e.g. `Retry-After`).
    var headers: HTTPFields = [:]

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONResponse.make(status: status, json: body)
        response.headers.append(contentsOf: headers)
        return response
    }

    static func detail(_ status: HTTPResponse.Status, _ detail: String, code: String? = nil) -> APIError {
        if let code {
            return APIError(status: status, body: WireEncoding.encode(["detail": detail, "code": code]))
        }
        return APIError(status: status, body: WireEncoding.encode(["detail": detail]))
    }

    /// A 400 listing the problems of each field; `non_field_errors` for the whole form.
    static func fields(_ errors: [String: [String]]) -> APIError {
        APIError(status: .badRequest, body: WireEncoding.encode(errors))
    }

    static let notFound = detail(.notFound, "Not found.")

    /// A 503 for a change the hub could not make durable (`CommitLog`): it may not have happened.
    static func notDurable(_ error: HubError) -> APIError {
        detail(.serviceUnavailable, error.message, code: error.code.rawValue)
    }
}

extension PasswordHasher.Busy: HTTPResponseError {
    var status: HTTPResponse.Status { .serviceUnavailable }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var error = APIError.detail(status, "Too many password checks at once; try again in a second.", code: "busy")
        error.headers[.retryAfter] = "1"
        return try error.response(from: request, context: context)
    }
}

/// Builds JSON responses.
enum JSONResponse {
    static func make(status: HTTPResponse.Status = .ok, json: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: json))
        )
    }

    static func make(status: HTTPResponse.Status = .ok, _ value: some Encodable) -> Response {
        make(status: status, json: WireEncoding.encode(value))
    }
}
