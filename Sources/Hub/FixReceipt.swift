/// What is left of a GPS fix once `Hub.recordFix` returned: nothing, or the fix's record by its
/// trip, queued on the trip's executor (or, in a hub without `TripExecutors`, still to be made).
///
/// The caller settles it before its next request that awaits an actor, so the trip takes each
/// driver's messages in the order sent; fixes need no settling among themselves, since their
/// jobs run in order.
public struct FixReceipt: Sendable {
    enum Pending: Sendable {
        case none
        case queued(any TripJobQueue)
        case unrecorded(TripActor, LocationFix, driverID: Int, via: ConnectionID)
    }

    let pending: Pending

    /// Nothing left to wait for: the fix was recorded, refused by its trip, or had no trip.
    public static let settled = FixReceipt(pending: .none)

    public var isSettled: Bool {
        if case .none = pending { return true }
        return false
    }

    /// True when the trip records the fix only in `settle`: in a hub without `TripExecutors`,
    /// where a trip has no queue of plain jobs (never in the server).
    public var recordsOnSettle: Bool {
        if case .unrecorded = pending { return true }
        return false
    }

    /// Returns once the trip has recorded the fix (at once when it has).
    public func settle() async {
        switch pending {
        case .none: return
        case .queued(let jobs): await jobs.drain()
        case .unrecorded(let trip, let fix, let driverID, let via): _ = await trip.recordLocation(fix, from: driverID, via: via)
        }
    }
}
