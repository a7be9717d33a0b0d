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

/// Turns what the hub says into the frames clients read: `{"type": ..., "data": ...}`, and for
/// events about a trip also the trip's `"seq"`. Trip states keep the reference's type
/// `echo.message` and its trip shape in `data`, so its clients read them unchanged.
enum OutboundEncoding {
    private struct Frame<Payload: Encodable>: Encodable {
        let type: String
        let data: Payload
        var seq: Int64?
    }

    static func type(of event: HubEvent) -> String {
        switch event {
        case .trip: "echo.message"
        case .location: "trip.location"
        }
    }

    /// Trip states encoded once for all their receivers.
    static let tripFrames = TripFrameCache()

    static func encode(_ event: HubEvent) -> String {
        switch event {
        case .trip(let view):
            tripFrames.frame(for: .init(tripID: view.trip.id, seq: view.trip.seq)) {
                WireEncoding.encode(Frame(type: type(of: event), data: TripJSON(view: view), seq: event.seq))
            }
        case .location(let location):
            encode(location)
        }
    }

    /// `trip.location` is the hub's most frequent frame, so it is written directly rather than
    /// through `JSONEncoder` (about 15 times cheaper). The result is the same JSON as
    /// `TripLocationJSON` in a `Frame` gives, keys sorted; a test keeps the two equal. Every
    /// string in it is a UUID or a time stamp (nothing to escape), and every number is finite
    /// (`LocationRules`), which Swift's shortest round-trip `description` writes as valid JSON.
    static func encode(_ location: TripLocation) -> String {
        func number(_ value: Double?) -> String {
            value.map { "\($0)" } ?? "null"
        }
        let fix = location.fix
        var text = #"{"data":{"accuracy":"#
        text += number(fix.accuracy)
        text += #","driver_id":\#(location.driverID),"heading":"#
        text += number(fix.heading)
        text += #","lat":\#(fix.point.lat),"lng":\#(fix.point.lng),"seq":\#(location.seq),"speed":"#
        text += number(fix.speed)
        text += #","timestamp":"\#(fix.timestamp.iso8601)","trip_id":"\#(location.tripID.lowercasedText)"},"#
        text += #""seq":\#(location.seq),"type":"trip.location"}"#
        return text
    }

    /// The generic encoding of a `trip.location` frame, which `encode(_: TripLocation)` matches.
    static func encodeWithEncoder(_ location: TripLocation) -> String {
        WireEncoding.encode(Frame(type: "trip.location", data: TripLocationJSON(location: location), seq: location.seq))
    }

    static func encode(_ reply: ErrorReply) -> String {
        WireEncoding.encode(Frame(type: "error", data: reply))
    }
}
