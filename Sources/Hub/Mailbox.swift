import Foundation

/// Identifies one client connection for the life of the process.
public struct ConnectionID: Sendable, Hashable {
    public let rawValue: UInt64

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }
}

/// A driver's position as the trip group sees it: event `seq` of trip `tripID`.
public struct TripLocation: Sendable, Equatable, Codable {
    public let tripID: UUID
    public let driverID: Int
    public let fix: LocationFix
    public let seq: Int64
    /// While the trip is `STARTED` and has a pick-up point: how far the driver is from it.
    public var pickUp: PickUpProgress?

    public init(tripID: UUID, driverID: Int, fix: LocationFix, seq: Int64, pickUp: PickUpProgress? = nil) {
        self.tripID = tripID
        self.driverID = driverID
        self.fix = fix
        self.seq = seq
        self.pickUp = pickUp
    }
}

/// Something the hub tells a connected client. Every event is about one trip and carries
/// that trip's `seq`, which only grows.
public enum HubEvent: Sendable, Equatable, Codable {
    /// A trip was created or changed (or is re-sent on resume); carries its nested form.
    case trip(TripView)
    /// The trip's driver moved. A mailbox may coalesce these: only the latest per trip matters.
    case location(TripLocation)
    /// A trip with a pick-up point offered to one driver: its state, as `.trip`, and the terms of
    /// the offer for that driver. Sent to that driver only, never kept for `resume`.
    case offer(TripView, OfferTerms)
    /// A driver's offer of a trip that still waits ended. Sent to that driver only; its `seq` is
    /// the trip's at the time, not an event's of its own.
    case offerWithdrawn(OfferWithdrawal)
    /// A new offer round, the driver arriving or arrived: to the trip's group, with a `seq` of its own.
    case notice(TripNotice)

    public var tripID: UUID {
        switch self {
        case .trip(let view), .offer(let view, _): view.trip.id
        case .location(let location): location.tripID
        case .offerWithdrawn(let withdrawal): withdrawal.tripID
        case .notice(let notice): notice.tripID
        }
    }

    public var seq: Int64 {
        switch self {
        case .trip(let view), .offer(let view, _): view.trip.seq
        case .location(let location): location.seq
        case .offerWithdrawn(let withdrawal): withdrawal.seq
        case .notice(let notice): notice.seq
        }
    }

    /// The trip state it carries: a state change, or an offer.
    public var tripState: TripView? {
        switch self {
        case .trip(let view), .offer(let view, _): view
        case .location, .offerWithdrawn, .notice: nil
        }
    }
}

/// The outbound queue of one connection.
///
/// `deliver` must never block or suspend: implementations enqueue into a bounded buffer that
/// the connection's own writer drains, so an actor that fans out never waits on a socket.
public protocol Mailbox: AnyObject, Sendable {
    var connectionID: ConnectionID { get }
    func deliver(_ event: HubEvent)
    /// Delivers events `resume` replays, in order; unlike live ones, none is coalesced away.
    func replay(_ events: [HubEvent])
    /// Marks the end of one trip's `resume`, after its replay (if any): from here on the client
    /// holds every event of the trip up to the highest `seq` it has seen, and may resume from
    /// there next time. Until then, it must resume from where it resumed before.
    func resumeEnded(trip: UUID, through seq: Int64)
}

extension Mailbox {
    /// Mailboxes of hub-internal listeners ignore the mark.
    public func resumeEnded(trip: UUID, through seq: Int64) {}
}
