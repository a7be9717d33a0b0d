/// The fast path of `ClientMessageParser`: a message decoded in one typed pass, with every field
/// any message type may carry at the JSON type the protocol gives it.
///
/// Decoding fails on anything else (not an object, no string `type`, a field of the wrong type),
/// and the parser then falls back to generic `JSONValue` decoding to name the culprit. What
/// succeeds is turned into the same `[String: JSONValue]` the slow path yields, so one set of
/// rules checks both.
struct TypedEnvelope: Decodable {
    let type: String
    let data: TypedFields?

    var jsonObject: [String: JSONValue] {
        var object: [String: JSONValue] = ["type": .string(type)]
        if let data { object["data"] = data.jsonValue }
        return object
    }
}

/// The fields of `data`; `isObject` is false when `data` was some other JSON value.
struct TypedFields: Decodable {
    /// `{"lat", "lng"}`.
    struct Point: Decodable {
        let lat: Double
        let lng: Double
    }

    private enum Key: String, CodingKey {
        case id, status, rider, driver, lat, lng, heading, speed, accuracy, timestamp, trips
        case pickUpAddress = "pick_up_address"
        case dropOffAddress = "drop_off_address"
        case pickUpLocation = "pick_up_location"
        case dropOffLocation = "drop_off_location"
    }

    private var strings: [String: String] = [:]
    private var numbers: [String: Double] = [:]
    private var points: [String: Point] = [:]
    private var trips: [String: Int64]?
    private var isObject = true

    init(from decoder: any Decoder) throws {
        // `echo.message` may carry any `data`; other types reject a non-object later.
        guard let container = try? decoder.container(keyedBy: Key.self) else {
            isObject = false
            return
        }
        // Only the keys the message has: a location names 2 to 6 of the 15.
        for key in container.allKeys {
            switch key {
            case .id, .status, .pickUpAddress, .dropOffAddress:
                strings[key.rawValue] = try container.decodeIfPresent(String.self, forKey: key)
            case .rider, .driver, .lat, .lng, .heading, .speed, .accuracy, .timestamp:
                numbers[key.rawValue] = try container.decodeIfPresent(Double.self, forKey: key)
            case .pickUpLocation, .dropOffLocation:
                points[key.rawValue] = try container.decodeIfPresent(Point.self, forKey: key)
            case .trips:
                trips = try container.decodeIfPresent([String: Int64].self, forKey: key)
            }
        }
    }

    var jsonValue: JSONValue {
        guard isObject else { return .array([]) }
        var object: [String: JSONValue] = [:]
        for (key, value) in strings { object[key] = .string(value) }
        for (key, value) in numbers { object[key] = .number(value) }
        for (key, point) in points { object[key] = .object(["lat": .number(point.lat), "lng": .number(point.lng)]) }
        if let trips { object["trips"] = .object(trips.mapValues { .number(Double($0)) }) }
        return .object(object)
    }
}
