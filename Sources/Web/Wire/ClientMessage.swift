import Foundation
import Hub
import NIOCore

/// A message a client may send over `/taxi/`, parsed and type-checked.
enum ClientMessage: Equatable {
    case echo
    case createTrip(TripRequest)
    case updateTrip(id: UUID, TripUpdate)
    case cancelTrip(id: UUID)
    case updateLocation(LocationFix)
    /// The last `seq` the client saw of each trip.
    case resume([UUID: Int64])
    /// A driver declines its offer of a trip.
    case declineTrip(id: UUID)
    /// A driver goes online or offline.
    case updateAvailability(online: Bool)

    static let knownTypes = [
        "echo.message", "create.trip", "update.trip", "cancel.trip", "update.location", "resume", "decline.trip", "update.availability",
    ]

    /// The `type` the message came with.
    var type: String {
        switch self {
        case .echo: "echo.message"
        case .createTrip: "create.trip"
        case .updateTrip: "update.trip"
        case .cancelTrip: "cancel.trip"
        case .updateLocation: "update.location"
        case .resume: "resume"
        case .declineTrip: "decline.trip"
        case .updateAvailability: "update.availability"
        }
    }
}

/// Why a client message could not be parsed; maps to the wire's error codes.
struct WireError: Error, Equatable {
    enum Code: String {
        case badMessage = "bad_message"
        case unknownType = "unknown_type"
        case invalid
        case tooLarge = "too_large"
        case rateLimited = "rate_limited"
    }

    let code: Code
    let message: String
    /// The message's `type`, when it had a readable one.
    var requestType: String?
}

/// Parses client frames: JSON object, `type`, then the fields of `data` with their types.
enum ClientMessageParser {
    /// Most trips one `resume` may name.
    static let maxResumedTrips = 100

    static func parse(_ text: String, receivedAt now: Timestamp = .now()) -> Result<ClientMessage, WireError> {
        interpret(JSONReader.parse(text), receivedAt: now)
    }

    /// A message as the socket read it: its bytes are parsed where they lie, not copied into a
    /// string first. Bytes that are not UTF-8 make it a `bad_message`.
    static func parse(_ message: ByteBuffer, receivedAt now: Timestamp = .now()) -> Result<ClientMessage, WireError> {
        interpret(message.withUnsafeReadableBytes { JSONReader.parse($0) }, receivedAt: now)
    }

    private static func interpret(_ envelope: JSONValue?, receivedAt now: Timestamp) -> Result<ClientMessage, WireError> {
        guard let envelope else {
            return .failure(WireError(code: .badMessage, message: "The message is not valid JSON."))
        }
        guard let object = envelope.objectValue else {
            return .failure(WireError(code: .badMessage, message: "The message must be a JSON object."))
        }
        guard case .string(let type)? = object["type"] else {
            return .failure(WireError(code: .badMessage, message: "The message has no string field \"type\"."))
        }
        do throws(WireError) {
            let fields = Fields(type: type, data: object["data"])
            switch type {
            case "echo.message":
                return .success(.echo)
            case "create.trip":
                let data = try fields.object()
                return .success(
                    .createTrip(
                        TripRequest(
                            pickUpAddress: try fields.requiredString("pick_up_address", in: data),
                            dropOffAddress: try fields.requiredString("drop_off_address", in: data),
                            riderID: try fields.optionalInt("rider", in: data),
                            pickUpLocation: try fields.optionalPoint("pick_up_location", in: data),
                            dropOffLocation: try fields.optionalPoint("drop_off_location", in: data)
                        )
                    )
                )
            case "cancel.trip":
                return .success(.cancelTrip(id: try fields.tripID(in: try fields.object())))
            case "decline.trip":
                return .success(.declineTrip(id: try fields.tripID(in: try fields.object())))
            case "update.availability":
                return .success(.updateAvailability(online: try fields.requiredBool("online", in: try fields.object())))
            case "update.location":
                let data = try fields.object()
                let point = GeoPoint(lat: try fields.requiredNumber("lat", in: data), lng: try fields.requiredNumber("lng", in: data))
                var timestamp = now
                if let milliseconds = try fields.optionalNumber("timestamp", in: data) {
                    guard abs(milliseconds) < 1e15 else {
                        throw WireError(code: .invalid, message: "\"timestamp\" is out of range.", requestType: type)
                    }
                    timestamp = Timestamp(microseconds: Int64(milliseconds * 1000))
                }
                return .success(
                    .updateLocation(
                        LocationFix(
                            point: point,
                            heading: try fields.optionalNumber("heading", in: data),
                            speed: try fields.optionalNumber("speed", in: data),
                            accuracy: try fields.optionalNumber("accuracy", in: data),
                            timestamp: timestamp
                        )
                    )
                )
            case "resume":
                let data = try fields.object()
                guard let trips = data["trips"]?.objectValue else {
                    throw WireError(code: .badMessage, message: "\"trips\" must be an object of trip id to last seq.", requestType: type)
                }
                let members = trips.uniqueMembers
                guard members.count <= maxResumedTrips else {
                    throw WireError(code: .invalid, message: "resume names at most \(maxResumedTrips) trips.", requestType: type)
                }
                var lastSeen: [UUID: Int64] = [:]
                for (key, value) in members {
                    guard let id = UUID(uuidString: key) else {
                        throw WireError(code: .invalid, message: "\"\(key)\" is not a valid trip id.", requestType: type)
                    }
                    guard let seq = value.intValue, seq >= 0 else {
                        throw WireError(code: .badMessage, message: "The last seq of a trip must be a whole number ≥ 0.", requestType: type)
                    }
                    lastSeen[id] = Int64(seq)
                }
                return .success(.resume(lastSeen))
            case "update.trip":
                let data = try fields.object()
                let id = try fields.tripID(in: data)
                var status: TripStatus?
                if let statusText = try fields.optionalString("status", in: data) {
                    guard let parsed = TripStatus(rawValue: statusText) else {
                        let choices = TripStatus.allCases.map(\.rawValue).joined(separator: ", ")
                        throw WireError(
                            code: .invalid, message: "\"\(statusText)\" is not a valid status (\(choices)).", requestType: type
                        )
                    }
                    status = parsed
                }
                let update = TripUpdate(
                    status: status,
                    riderID: try fields.optionalInt("rider", in: data),
                    driverID: try fields.optionalInt("driver", in: data)
                )
                return .success(.updateTrip(id: id, update))
            default:
                return .failure(
                    WireError(code: .unknownType, message: "Unknown message type \"\(type)\".", requestType: type)
                )
            }
        } catch {
            return .failure(error)
        }
    }

    /// Typed access to the `data` object of one message, with errors naming the field.
    private struct Fields {
        let type: String
        let data: JSONValue?

        func object() throws(WireError) -> JSONObject {
            guard let object = data?.objectValue else {
                throw WireError(code: .badMessage, message: "\"data\" must be a JSON object.", requestType: type)
            }
            return object
        }

        func requiredString(_ key: String, in object: JSONObject) throws(WireError) -> String {
            guard let value = try optionalString(key, in: object) else {
                throw WireError(code: .invalid, message: "\"\(key)\" is required.", requestType: type)
            }
            return value
        }

        func optionalString(_ key: String, in object: JSONObject) throws(WireError) -> String? {
            switch object[key] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            default: throw WireError(code: .badMessage, message: "\"\(key)\" must be a string.", requestType: type)
            }
        }

        func requiredBool(_ key: String, in object: JSONObject) throws(WireError) -> Bool {
            switch object[key] {
            case nil, .null?: throw WireError(code: .invalid, message: "\"\(key)\" is required.", requestType: type)
            case .bool(let value)?: return value
            default: throw WireError(code: .badMessage, message: "\"\(key)\" must be true or false.", requestType: type)
            }
        }

        func tripID(in object: JSONObject) throws(WireError) -> UUID {
            guard let id = UUID(uuidString: try requiredString("id", in: object)) else {
                throw WireError(code: .invalid, message: "\"id\" is not a valid UUID.", requestType: type)
            }
            return id
        }

        func requiredNumber(_ key: String, in object: JSONObject) throws(WireError) -> Double {
            guard let value = try optionalNumber(key, in: object) else {
                throw WireError(code: .invalid, message: "\"\(key)\" is required.", requestType: type)
            }
            return value
        }

        func optionalNumber(_ key: String, in object: JSONObject) throws(WireError) -> Double? {
            switch object[key] {
            case nil, .null?: return nil
            case .number(let value)?: return value
            default: throw WireError(code: .badMessage, message: "\"\(key)\" must be a number.", requestType: type)
            }
        }

        /// An optional `{"lat", "lng"}` object.
        func optionalPoint(_ key: String, in object: JSONObject) throws(WireError) -> GeoPoint? {
            switch object[key] {
            case nil, .null?: return nil
            case .object(let point)?:
                return GeoPoint(lat: try requiredNumber("lat", in: point), lng: try requiredNumber("lng", in: point))
            default:
                throw WireError(code: .badMessage, message: "\"\(key)\" must be an object {\"lat\", \"lng\"}.", requestType: type)
            }
        }

        func optionalInt(_ key: String, in object: JSONObject) throws(WireError) -> Int? {
            switch object[key] {
            case nil, .null?: return nil
            case let value?:
                guard let int = value.intValue else {
                    throw WireError(code: .badMessage, message: "\"\(key)\" must be an integer user id.", requestType: type)
                }
                return int
            }
        }
    }
}
