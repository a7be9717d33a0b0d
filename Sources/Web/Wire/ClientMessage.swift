import Foundation
import Hub

/// A message a client may send over `/taxi/`, parsed and type-checked.
enum ClientMessage: Equatable {
    case echo
    case createTrip(TripRequest)
    case updateTrip(id: UUID, TripUpdate)

    static let knownTypes = ["echo.message", "create.trip", "update.trip"]
}

/// Why a client message could not be parsed; maps to the wire's error codes.
struct WireError: Error, Equatable {
    enum Code: String {
        case badMessage = "bad_message"
        case unknownType = "unknown_type"
        case invalid
        case tooLarge = "too_large"
    }

    let code: Code
    let message: String
    /// The message's `type`, when it had a readable one.
    var requestType: String?
}

/// Parses client frames: JSON object, `type`, then the fields of `data` with their types.
enum ClientMessageParser {
    static func parse(_ text: String) -> Result<ClientMessage, WireError> {
        guard let envelope = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
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
                            riderID: try fields.optionalInt("rider", in: data)
                        )
                    )
                )
            case "update.trip":
                let data = try fields.object()
                let idText = try fields.requiredString("id", in: data)
                guard let id = UUID(uuidString: idText) else {
                    throw WireError(code: .invalid, message: "\"id\" is not a valid UUID.", requestType: type)
                }
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

        func object() throws(WireError) -> [String: JSONValue] {
            guard let object = data?.objectValue else {
                throw WireError(code: .badMessage, message: "\"data\" must be a JSON object.", requestType: type)
            }
            return object
        }

        func requiredString(_ key: String, in object: [String: JSONValue]) throws(WireError) -> String {
            guard let value = try optionalString(key, in: object) else {
                throw WireError(code: .invalid, message: "\"\(key)\" is required.", requestType: type)
            }
            return value
        }

        func optionalString(_ key: String, in object: [String: JSONValue]) throws(WireError) -> String? {
            switch object[key] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            default: throw WireError(code: .badMessage, message: "\"\(key)\" must be a string.", requestType: type)
            }
        }

        func optionalInt(_ key: String, in object: [String: JSONValue]) throws(WireError) -> Int? {
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
