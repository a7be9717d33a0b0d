import Foundation
import Hub
import NIOCore

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
        /// An offer's terms, beside the trip state in `data` (absent in every other frame).
        var offer: OfferJSON?
    }

    static func type(of event: HubEvent) -> String {
        switch event {
        case .trip, .offer: "echo.message"
        case .location: "trip.location"
        case .offerWithdrawn: "trip.offer_withdrawn"
        case .notice(let notice):
            switch notice.kind {
            case .searching: "trip.searching"
            case .arriving: "trip.driver_arriving"
            case .arrived: "trip.driver_arrived"
            }
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
        case .offer(let view, let terms):
            // One frame per driver (its distance differs): not cached.
            WireEncoding.encode(Frame(type: type(of: event), data: TripJSON(view: view), seq: event.seq, offer: OfferJSON(terms)))
        case .offerWithdrawn(let withdrawal):
            WireEncoding.encode(Frame(type: type(of: event), data: WithdrawalJSON(withdrawal)))
        case .notice(let notice):
            WireEncoding.encode(Frame(type: type(of: event), data: NoticeJSON(notice), seq: notice.seq))
        }
    }

    /// `{"type": "driver.availability", "data": {"online": …}}`: the answer to `update.availability`.
    static func encodeAvailability(online: Bool) -> String {
        WireEncoding.encode(Frame(type: "driver.availability", data: ["online": online]))
    }

    /// `trip.location` is the hub's most frequent frame, so it is written directly rather than
    /// through `JSONEncoder` (about 15 times cheaper), straight into the frame's buffer. The
    /// result is the same JSON as `TripLocationJSON` in a `Frame` gives, keys sorted; a test keeps
    /// the two equal. Every string in it is a UUID or a time stamp (nothing to escape), and every
    /// number is finite (`LocationRules`), which Swift's shortest round-trip `description` writes
    /// as valid JSON.
    static func write(_ location: TripLocation, into buffer: inout ByteBuffer) {
        func number(_ value: Double?) {
            if let value { buffer.writeString(value.description) } else { buffer.writeStaticString("null") }
        }
        let fix = location.fix
        buffer.writeStaticString(#"{"data":{"accuracy":"#)
        number(fix.accuracy)
        buffer.writeStaticString(#","driver_id":"#)
        buffer.writeString(String(location.driverID))
        buffer.writeStaticString(#","heading":"#)
        number(fix.heading)
        buffer.writeStaticString(#","lat":"#)
        number(fix.point.lat)
        buffer.writeStaticString(#","lng":"#)
        number(fix.point.lng)
        if let pickUp = location.pickUp {
            buffer.writeStaticString(#","pickup_distance":"#)
            buffer.writeString(String(Int(pickUp.distance.rounded())))
            buffer.writeStaticString(#","pickup_eta":"#)
            buffer.writeString(String(pickUp.eta))
        }
        buffer.writeStaticString(#","seq":"#)
        buffer.writeString(String(location.seq))
        buffer.writeStaticString(#","speed":"#)
        number(fix.speed)
        buffer.writeStaticString(#","timestamp":""#)
        buffer.writeString(fix.timestamp.iso8601)
        buffer.writeStaticString(#"","trip_id":""#)
        buffer.writeString(location.tripID.lowercasedText)
        buffer.writeStaticString(#""},"seq":"#)
        buffer.writeString(String(location.seq))
        buffer.writeStaticString(#","type":"trip.location"}"#)
    }

    /// Bytes that hold any `trip.location` frame without growing: 170 of fixed text, five
    /// numbers of at most 24 characters, five integers of at most 20, a UUID (36) and a time
    /// stamp (27).
    static let locationCapacity = 448

    /// `write(_:into:)` as a string.
    static func encode(_ location: TripLocation) -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: locationCapacity)
        write(location, into: &buffer)
        return String(buffer: buffer)
    }

    /// The generic encoding of a `trip.location` frame, which `encode(_: TripLocation)` matches.
    static func encodeWithEncoder(_ location: TripLocation) -> String {
        WireEncoding.encode(Frame(type: "trip.location", data: TripLocationJSON(location: location), seq: location.seq))
    }

    static func encode(_ reply: ErrorReply) -> String {
        WireEncoding.encode(Frame(type: "error", data: reply))
    }

    /// `{"type": "resume.done", "data": {"trip_id": …, "seq": …}}`: the end of one trip's resume.
    static func encodeResumeDone(trip: UUID, through seq: Int64) -> String {
        WireEncoding.encode(Frame(type: "resume.done", data: ResumeDoneJSON(tripID: trip.lowercasedText, seq: seq)))
    }
}

/// An offer's terms, the frame's `offer`: `{"distance", "eta", "expires", "expires_in", "round"}`
/// (metres and seconds, whole; `expires_in` in seconds to the millisecond).
struct OfferJSON: Encodable {
    let distance: Int
    let eta: Int
    let expires: String
    let expiresIn: Double
    let round: Int

    init(_ terms: OfferTerms) {
        distance = Int(terms.distance.rounded())
        eta = terms.eta
        expires = terms.expires.iso8601
        expiresIn = (terms.expiresIn * 1000).rounded() / 1000
        round = terms.round
    }

    enum CodingKeys: String, CodingKey {
        case distance, eta, expires, round
        case expiresIn = "expires_in"
    }
}

/// The data of `trip.offer_withdrawn`: `{"trip_id", "reason"}`.
struct WithdrawalJSON: Encodable {
    let tripID: String
    let reason: String

    init(_ withdrawal: OfferWithdrawal) {
        tripID = withdrawal.tripID.lowercasedText
        reason = withdrawal.reason.rawValue
    }

    enum CodingKeys: String, CodingKey {
        case tripID = "trip_id"
        case reason
    }
}

/// The data of `trip.searching` (`{"trip_id", "round", "radius"}`), `trip.driver_arriving`
/// (`{"trip_id", "driver_id", "distance", "eta"}`) and `trip.driver_arrived`
/// (`{"trip_id", "driver_id", "distance"}`); metres and seconds, whole.
struct NoticeJSON: Encodable {
    let notice: TripNotice

    init(_ notice: TripNotice) {
        self.notice = notice
    }

    enum CodingKeys: String, CodingKey {
        case tripID = "trip_id"
        case driverID = "driver_id"
        case round, radius, distance, eta
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(notice.tripID.lowercasedText, forKey: .tripID)
        switch notice.kind {
        case .searching(let round, let radius):
            try container.encode(round, forKey: .round)
            try container.encode(Int(radius.rounded()), forKey: .radius)
        case .arriving(let distance, let eta):
            try container.encode(notice.driverID, forKey: .driverID)
            try container.encode(Int(distance.rounded()), forKey: .distance)
            try container.encode(eta, forKey: .eta)
        case .arrived(let distance):
            try container.encode(notice.driverID, forKey: .driverID)
            try container.encode(Int(distance.rounded()), forKey: .distance)
        }
    }
}

/// The data of a `resume.done` frame.
struct ResumeDoneJSON: Encodable {
    let tripID: String
    let seq: Int64

    enum CodingKeys: String, CodingKey {
        case tripID = "trip_id"
        case seq
    }
}
