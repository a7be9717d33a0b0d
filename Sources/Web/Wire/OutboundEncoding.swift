import Hub

/// An error frame's payload: `{"code", "message", "request_type"}`.
struct ErrorReply: Encodable, Equatable {
    let code: String
    let message: String
    let requestType: String?

    enum CodingKeys: String, CodingKey {
        case code, message
        case requestType = "request_type"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encode(message, forKey: .message)
        try container.encode(requestType, forKey: .requestType)
    }

    init(_ error: WireError) {
        code = error.code.rawValue
        message = error.message
        requestType = error.requestType
    }

    init(_ error: HubError, requestType: String) {
        code = error.code.rawValue
        message = error.message
        self.requestType = requestType
    }
}

/// Turns what the hub says into the frames clients read: `{"type": ..., "data": ...}`.
enum OutboundEncoding {
    private struct Frame<Payload: Encodable>: Encodable {
        let type: String
        let data: Payload
    }

    static func encode(_ event: HubEvent) -> String {
        switch event {
        case .trip(let view):
            WireEncoding.encode(Frame(type: "echo.message", data: TripJSON(view: view)))
        }
    }

    static func encode(_ reply: ErrorReply) -> String {
        WireEncoding.encode(Frame(type: "error", data: reply))
    }
}
