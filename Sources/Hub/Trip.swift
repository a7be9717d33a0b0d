import Foundation

/// The life cycle of a trip. Statuses only ever move forward, in declaration order.
public enum TripStatus: String, Sendable, Codable, CaseIterable, Comparable {
    case requested = "REQUESTED"
    case started = "STARTED"
    case inProgress = "IN_PROGRESS"
    case completed = "COMPLETED"
    /// Ended by its rider from `REQUESTED` or `STARTED` (`cancel.trip`); like `COMPLETED`, final.
    case canceled = "CANCELED"

    /// Position in the life cycle; a valid move goes to a strictly larger rank.
    public var rank: Int {
        switch self {
        case .requested: 0
        case .started: 1
        case .inProgress: 2
        case .completed: 3
        case .canceled: 4
        }
    }

    /// A finished trip takes no more changes and is not loaded into memory on start.
    public var isFinished: Bool { self == .completed || self == .canceled }

    /// The driver of an active trip is busy (not offered new trips) and its locations are tracked.
    public var isActive: Bool { self == .started || self == .inProgress }

    public static func < (lhs: TripStatus, rhs: TripStatus) -> Bool { lhs.rank < rhs.rank }
}

/// Why a trip ended `CANCELED`.
public enum CancelReason: String, Sendable, Codable, CaseIterable {
    /// Its rider canceled it (`cancel.trip`).
    case riderCanceled = "rider_canceled"
    /// No driver took it within `dispatchTimeout` (docs/protocol.md §3.3).
    case noDriverFound = "no_driver_found"
}

/// A trip's stored state: what the snapshot loop persists and the start-up loads.
public struct Trip: Sendable, Hashable, Codable {
    public let id: UUID
    public let created: Timestamp
    public var updated: Timestamp
    public var pickUpAddress: String
    public var dropOffAddress: String
    public var status: TripStatus
    public var riderID: Int?
    public var driverID: Int?
    /// Where the rider wants to be picked up and dropped off, when the client sent coordinates.
    public var pickUpLocation: GeoPoint?
    public var dropOffLocation: GeoPoint?
    /// The number of the trip's latest event (state change or location); only ever grows.
    public var seq: Int64
    /// Why a `CANCELED` trip ended; nil for every other status (and for trips canceled before the
    /// reason was kept).
    public var cancelReason: CancelReason?

    public init(
        id: UUID, created: Timestamp, updated: Timestamp, pickUpAddress: String, dropOffAddress: String,
        status: TripStatus, riderID: Int?, driverID: Int?,
        pickUpLocation: GeoPoint? = nil, dropOffLocation: GeoPoint? = nil, seq: Int64 = 0, cancelReason: CancelReason? = nil
    ) {
        self.id = id
        self.created = created
        self.updated = updated
        self.pickUpAddress = pickUpAddress
        self.dropOffAddress = dropOffAddress
        self.status = status
        self.riderID = riderID
        self.driverID = driverID
        self.pickUpLocation = pickUpLocation
        self.dropOffLocation = dropOffLocation
        self.seq = seq
        self.cancelReason = cancelReason
    }
}

/// A trip with its rider and driver resolved: the "nested" form clients receive.
public struct TripView: Sendable, Hashable, Codable {
    public let trip: Trip
    public let rider: User?
    public let driver: User?

    public init(trip: Trip, rider: User?, driver: User?) {
        self.trip = trip
        self.rider = rider
        self.driver = driver
    }
}
