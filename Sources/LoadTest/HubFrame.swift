import NIOCore

/// A latitude and longitude in degrees.
struct Coordinates: Sendable, Equatable {
    var lat: Double
    var lng: Double
}

/// What the generator reads out of one frame from the hub (or from the echo route).
enum HubFrame: Equatable {
    /// A trip state (`echo.message` whose data is a trip).
    case trip(TripState)
    /// `trip.location`: the trip's driver sent this position; `seq` is the trip's (§3.1).
    case location(tripID: String, driverID: Int, at: Coordinates, seq: Int?)
    /// `error`.
    case error(code: String, requestType: String?)
    /// `resume.done`: the end of a trip's replay (§3.5).
    case resumeDone(tripID: String)
    /// `trip.offer_withdrawn`: a driver's offer of a trip that still waits ended without it
    /// (§3.6), by `reason` (`expired`, `declined`, `unavailable`).
    case offerWithdrawn(tripID: String, reason: String)
    /// `trip.searching`: the rider's trip moved to offer round `round` (§3.3); `seq` is the trip's.
    case searching(tripID: String, round: Int, seq: Int?)
    /// One of the generator's own `update.location` frames, back from `/bench/echo`: the
    /// `timestamp` it carries is the time it was scheduled (monotonic nanoseconds).
    case echoedFix(scheduledAt: UInt64)
    /// Anything else.
    case other

    /// The fields of a trip that the traffic acts on, and the frame's `seq`.
    struct TripState: Equatable {
        let id: String
        let seq: Int?
        let status: String
        let riderID: Int?
        let driverID: Int?
        let pickUp: Coordinates?
        let dropOff: Coordinates?
        /// The offer's `round` when the frame is an offer with terms (§3.3: an `offer` beside `data`).
        var offerRound: Int? = nil
        /// `cancel_reason` of a `CANCELED` trip (`no_driver_found`, `rider_canceled`).
        var cancelReason: String? = nil
    }

    static func parse(_ buffer: ByteBuffer) -> HubFrame {
        buffer.withUnsafeReadableBytes { parse(JSONScanner(bytes: $0)) }
    }

    static func parse(_ text: String) -> HubFrame {
        var text = text
        return text.withUTF8 { parse(JSONScanner(bytes: UnsafeRawBufferPointer($0))) }
    }

    private static func parse(_ json: JSONScanner) -> HubFrame {
        guard let frame = json.members(), let type = json.string(json.value("type", in: frame)),
            let dataRange = json.value("data", in: frame), let data = json.members(ofObjectAt: dataRange.lowerBound)
        else { return .other }
        switch type {
        case "trip.location":
            guard let tripID = json.string(json.value("trip_id", in: data)), let driverID = json.int(json.value("driver_id", in: data)),
                let lat = json.double(json.value("lat", in: data)), let lng = json.double(json.value("lng", in: data))
            else { return .other }
            return .location(tripID: tripID, driverID: driverID, at: Coordinates(lat: lat, lng: lng), seq: json.int(json.value("seq", in: frame)))
        case "echo.message":
            guard let id = json.string(json.value("id", in: data)), let status = json.string(json.value("status", in: data)) else {
                return .other
            }
            // The offer's terms and the cancel reason are read only where they can be, so the
            // frames of the trip stream cost what they did.
            let offer = status == "REQUESTED" ? json.value("offer", in: frame).flatMap { json.members(ofObjectAt: $0.lowerBound) } : nil
            return .trip(
                TripState(
                    id: id, seq: json.int(json.value("seq", in: frame)), status: status, riderID: userID(json.value("rider", in: data), json),
                    driverID: userID(json.value("driver", in: data), json),
                    pickUp: coordinates(json.value("pick_up_location", in: data), json),
                    dropOff: coordinates(json.value("drop_off_location", in: data), json),
                    offerRound: offer.flatMap { json.int(json.value("round", in: $0)) },
                    cancelReason: status == "CANCELED" ? json.string(json.value("cancel_reason", in: data)) : nil
                )
            )
        case "error":
            guard let code = json.string(json.value("code", in: data)) else { return .other }
            return .error(code: code, requestType: json.string(json.value("request_type", in: data)))
        case "resume.done":
            guard let tripID = json.string(json.value("trip_id", in: data)) else { return .other }
            return .resumeDone(tripID: tripID)
        case "trip.offer_withdrawn":
            guard let tripID = json.string(json.value("trip_id", in: data)), let reason = json.string(json.value("reason", in: data)) else {
                return .other
            }
            return .offerWithdrawn(tripID: tripID, reason: reason)
        case "trip.searching":
            guard let tripID = json.string(json.value("trip_id", in: data)), let round = json.int(json.value("round", in: data)) else {
                return .other
            }
            return .searching(tripID: tripID, round: round, seq: json.int(json.value("seq", in: frame)))
        case "update.location":
            guard let scheduled = json.int(json.value("timestamp", in: data)) else { return .other }
            return .echoedFix(scheduledAt: UInt64(scheduled))
        default:
            return .other
        }
    }

    /// The `id` of a nested user object; nil for `null` or when absent.
    private static func userID(_ range: Range<Int>?, _ json: JSONScanner) -> Int? {
        guard let range, !json.isNull(range), let user = json.members(ofObjectAt: range.lowerBound) else { return nil }
        return json.int(json.value("id", in: user))
    }

    private static func coordinates(_ range: Range<Int>?, _ json: JSONScanner) -> Coordinates? {
        guard let range, !json.isNull(range), let point = json.members(ofObjectAt: range.lowerBound),
            let lat = json.double(json.value("lat", in: point)), let lng = json.double(json.value("lng", in: point))
        else { return nil }
        return Coordinates(lat: lat, lng: lng)
    }
}

/// The frames the simulated clients send, as the protocol spells them.
enum ClientFrames {
    /// A driver's GPS fix; `timestamp` is milliseconds since the epoch for the hub, or the
    /// scheduled monotonic time in nanoseconds for the echo baseline (same size, give or take a digit).
    static func location(_ point: Coordinates, heading: Double, speed: Double, timestamp: UInt64) -> String {
        #"{"type":"update.location","data":{"lat":\#(point.lat),"lng":\#(point.lng),"heading":\#(heading),"#
            + #""speed":\#(speed),"accuracy":5.0,"timestamp":\#(timestamp)}}"#
    }

    static func createTrip(riderID: Int, from pickUp: Coordinates, _ pickUpAddress: String, to dropOff: Coordinates, _ dropOffAddress: String)
        -> String
    {
        #"{"type":"create.trip","data":{"rider":\#(riderID),"pick_up_address":"\#(pickUpAddress)","#
            + #""drop_off_address":"\#(dropOffAddress)","pick_up_location":{"lat":\#(pickUp.lat),"lng":\#(pickUp.lng)},"#
            + #""drop_off_location":{"lat":\#(dropOff.lat),"lng":\#(dropOff.lng)}}}"#
    }

    static func updateTrip(_ tripID: String, status: String) -> String {
        #"{"type":"update.trip","data":{"id":"\#(tripID)","status":"\#(status)"}}"#
    }

    static func cancelTrip(_ tripID: String) -> String {
        #"{"type":"cancel.trip","data":{"id":"\#(tripID)"}}"#
    }

    /// `decline.trip` (§3.6): a driver says no to its offer.
    static func declineTrip(_ tripID: String) -> String {
        #"{"type":"decline.trip","data":{"id":"\#(tripID)"}}"#
    }

    /// `resume` (§3.5): the last `seq` seen of each trip.
    static func resume(_ trips: [(id: String, seq: Int)]) -> String {
        #"{"type":"resume","data":{"trips":{"# + trips.map { #""\#($0.id)":\#($0.seq)"# }.joined(separator: ",") + "}}}"
    }
}
