import Foundation
import Hub

/// The NATS subjects of a cluster. Every subject starts with `taxihub.`.
enum Subject {
    /// Requests and fixes for one trip; only its owner subscribes.
    static func trip(_ id: UUID) -> String { "taxihub.trip.\(id.lowercasedText)" }
    /// Events for connections of one node; only that node subscribes.
    static func node(_ id: String) -> String { "taxihub.node.\(id)" }
    /// Connections opened and closed on any node.
    static let connections = "taxihub.connections"
    /// Where each node's drivers are.
    static let drivers = "taxihub.drivers"
    /// Users signed up on any node.
    static let users = "taxihub.users"
    /// A node took another's trips over.
    static let takeovers = "taxihub.takeovers"
}

/// A connection on some node, as the other nodes address it.
struct Origin: Codable, Hashable, Sendable {
    let node: String
    /// Which run of the node: a restarted node's connections are new ones.
    let incarnation: UInt64
    let connection: UInt64
}

/// What a node asks a trip's owner (`Subject.trip`); a driver's fixes go there as `FixMessage`s.
enum TripCommand: Codable, Sendable {
    case update(TripUpdate, by: Principal, origin: Origin)
    case cancel(by: Principal, origin: Origin)
    case resume(after: Int64, by: Principal, origin: Origin)
    case decline(by: Principal, origin: Origin)
}

/// The owner's answer to a `TripCommand` request.
enum TripReply: Codable, Sendable {
    case trip(TripView)
    /// A `resume` or a `decline` was carried out.
    case resumed
    case refused(code: String, message: String)

    init(_ error: HubError) {
        self = .refused(code: error.code.rawValue, message: error.message)
    }

    /// The view, or the owner's refusal as a `HubError`.
    func view() throws(HubError) -> TripView {
        switch self {
        case .trip(let view): return view
        case .resumed: throw HubError(.invalid, "The trip's node answered a change with a resume.")
        case .refused(let code, let message): throw HubError(HubError.Code(rawValue: code) ?? .invalid, message)
        }
    }
}

/// A trip owner's answer to a `TripCommand`, signed with the run that gave it: a requester drops
/// the answer of a run it knows was taken over (`RetiredOwners`).
struct OwnerAnswer: Codable, Sendable {
    let node: String
    let incarnation: UInt64
    let reply: TripReply
}

/// Events for one connection of the receiving node (`Subject.node`).
struct Delivery: Codable, Sendable {
    let connection: UInt64
    let events: [HubEvent]
    /// Replayed by `resume`: none may be coalesced away.
    let isReplay: Bool
    /// The end of a trip's `resume` (`Mailbox.resumeEnded`), after the events; nil otherwise.
    var resumeEnded: ResumeEnd? = nil

    struct ResumeEnd: Codable, Sendable {
        let trip: UUID
        let through: Int64
    }
}

/// A connection opened or closed on a node (`Subject.connections`).
struct ConnectionNotice: Codable, Sendable {
    let origin: Origin
    let principal: Principal
    let isOpen: Bool
    /// Sent again after a takeover: the trips joined send the connection their current state.
    let sendState: Bool
}

/// Where a node's drivers are (`Subject.drivers`): the drivers that joined, moved to another
/// cell or changed trip since the last notice; every `full` notice lists all of them.
struct DriverNotice: Codable, Sendable {
    struct Entry: Codable, Sendable {
        let connection: UInt64
        let driverID: Int
        let point: GeoPoint?
        let activeTrip: UUID?
        /// Online (`update.availability`), by its own node's word; nil is online.
        var online: Bool? = nil
        /// A fix within `stalePositionAfter`, by its own node's clock; nil is fresh.
        var fresh: Bool? = nil
    }

    let node: String
    let incarnation: UInt64
    let isFull: Bool
    let entries: [Entry]
    /// Connections gone since the last notice.
    let left: [UInt64]
}

/// A node took an expired node's trips over (`Subject.takeovers`): the other nodes forget the
/// expired node's connections and announce their own sockets of the trips' riders and drivers
/// again, so the new owner's trips reach them.
struct TakeoverNotice: Codable, Sendable {
    let from: String
    /// The run of `from` taken over: its answers are stale from now on.
    let incarnation: UInt64
    let by: String
    let users: [Int]
}

/// JSON on the wire between nodes: every node runs the same build.
enum ClusterCoding {
    static func encode(_ value: some Encodable) -> [UInt8] {
        // Every wire type is a plain value tree of strings and numbers: encoding cannot fail.
        (try? Array(JSONEncoder().encode(value))) ?? []
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from payload: [UInt8]) -> Value? {
        try? JSONDecoder().decode(type, from: Data(payload))
    }
}
