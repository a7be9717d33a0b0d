import Foundation
import Synchronization

/// Everything that changed since the last snapshot: the latest value of each changed entity.
public struct ChangeSet: Sendable, Equatable {
    public var users: [Int: User]
    public var trips: [UUID: Trip]
    /// The latest position of each driver that moved.
    public var driverPositions: [Int: DriverPosition]
    /// New track points, in the order they were recorded (per trip: ascending `seq`).
    public var trackPoints: [TrackPoint]

    public init(
        users: [Int: User] = [:], trips: [UUID: Trip] = [:],
        driverPositions: [Int: DriverPosition] = [:], trackPoints: [TrackPoint] = []
    ) {
        self.users = users
        self.trips = trips
        self.driverPositions = driverPositions
        self.trackPoints = trackPoints
    }

    public var isEmpty: Bool { users.isEmpty && trips.isEmpty && driverPositions.isEmpty && trackPoints.isEmpty }
    public var count: Int { users.count + trips.count + driverPositions.count + trackPoints.count }
}

/// Collects the latest value of every entity the hub changes, for the snapshot loop.
///
/// Owners (actors, the user directory) record a copy of the new value synchronously as
/// part of the change; the snapshot loop takes the whole set in O(1) and writes it off
/// the actors. A failed write gives the set back without overwriting newer values.
public final class ChangeTracker: Sendable {
    private let pending = Mutex(ChangeSet())

    public init() {}

    public func record(_ user: User) {
        pending.withLock { $0.users[user.id] = user }
    }

    public func record(_ trip: Trip) {
        pending.withLock { $0.trips[trip.id] = trip }
    }

    public func record(_ position: DriverPosition) {
        pending.withLock { $0.driverPositions[position.driverID] = position }
    }

    /// Records a point added to a trip's track.
    public func record(_ trackPoint: TrackPoint) {
        pending.withLock { $0.trackPoints.append(trackPoint) }
    }

    /// Takes every pending change, leaving the tracker empty, with room for as many positions and
    /// track points as are pending (under steady load the next set is about as large, and then
    /// does not grow step by step on the event loops that record into it). The room is allocated
    /// before the lock is taken, so recorders never wait on it.
    public func drain() -> ChangeSet {
        let (positions, points) = pending.withLock { ($0.driverPositions.count, $0.trackPoints.count) }
        var fresh = ChangeSet()
        fresh.driverPositions.reserveCapacity(positions)
        fresh.trackPoints.reserveCapacity(points)
        return pending.withLock { set in
            defer { set = fresh }
            return set
        }
    }

    /// Puts back a set whose write failed; values recorded since the drain are newer and win.
    public func restore(_ changes: ChangeSet) {
        pending.withLock { set in
            set.users.merge(changes.users) { newer, _ in newer }
            set.trips.merge(changes.trips) { newer, _ in newer }
            set.driverPositions.merge(changes.driverPositions) { newer, _ in newer }
            // Track points are append-only: the failed batch is older than anything recorded since.
            set.trackPoints = changes.trackPoints + set.trackPoints
        }
    }

    /// How many entities wait for the next snapshot.
    public var pendingCount: Int {
        pending.withLock { $0.count }
    }
}
