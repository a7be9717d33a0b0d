import Foundation
import Synchronization

/// The registry of live state: finds trip actors and driver groups, holds the user
/// directory, and runs the flows that span several actors (create, update, connect).
///
/// Trip look-ups go through sharded locks held only for a dictionary access, so the hot
/// path never queues behind one global lock or actor.
public final class Hub: Sendable {
    public let users: UserDirectory
    public let index: TripIndex
    public let changes: ChangeTracker
    public let drivers: DriverGroup
    private let shards: [TripShard]

    public init(changes: ChangeTracker = ChangeTracker(), shardCount: Int = 16) {
        self.changes = changes
        self.users = UserDirectory(changes: changes)
        self.index = TripIndex()
        self.drivers = DriverGroup()
        self.shards = (0..<max(1, shardCount)).map { _ in TripShard() }
    }

    /// Rebuilds live state from the store at start; nothing restored counts as changed.
    public func restore(users: [User], trips: [Trip]) {
        self.users.restore(users)
        for trip in trips where !trip.status.isFinished {
            register(trip)
        }
    }

    /// The actor of a live trip.
    public func tripActor(id: UUID) -> TripActor? {
        shard(for: id).actors.withLock { $0[id] }
    }

    /// Joins a new connection to its groups: drivers to the drivers group, everyone to
    /// each unfinished trip it takes part in. Returns the trips joined.
    public func connect(_ principal: Principal, mailbox: any Mailbox) async -> Set<UUID> {
        if principal.group == .driver {
            await drivers.join(mailbox)
        }
        var joined: Set<UUID> = []
        for trip in index.trips(involving: principal.userID) where !trip.status.isFinished {
            guard let actor = tripActor(id: trip.id) else { continue }
            await actor.join(mailbox)
            joined.insert(trip.id)
        }
        return joined
    }

    /// Removes a closed connection from every group it was in and every offer list it is on.
    public func disconnect(_ principal: Principal, mailbox: any Mailbox, joined: Set<UUID>) async {
        var trips = joined
        if principal.group == .driver {
            trips.formUnion(await drivers.leave(mailbox.connectionID))
        }
        for id in trips {
            await tripActor(id: id)?.leave(mailbox.connectionID)
        }
    }

    /// Creates a `REQUESTED` trip for the sending rider, joins the sender to its group,
    /// sends it the trip and alerts the drivers.
    public func createTrip(_ request: TripRequest, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError) -> TripView
    {
        let trip = try TripRules.newTrip(request, by: sender)
        // Recorded before the trip can be found, so a racing accept's record is always the later one.
        changes.record(trip)
        let actor = register(trip)
        await actor.join(mailbox)
        await actor.publish()
        await actor.offer(to: drivers.driversToAlert(for: trip.id))
        return await actor.view
    }

    /// Applies a client's update to a live trip.
    public func updateTrip(id: UUID, _ update: TripUpdate, by sender: Principal, from mailbox: any Mailbox)
        async throws(HubError) -> TripView
    {
        guard let actor = tripActor(id: id) else {
            throw HubError(.notFound, "Trip \(id.uuidString.lowercased()) does not exist.")
        }
        let outcome = try await actor.update(update, by: sender, from: mailbox)
        if !outcome.withdrawnOffers.isEmpty {
            await drivers.withdraw(id, from: outcome.withdrawnOffers)
        }
        return outcome.view
    }

    /// Drops finished trips from memory once the store holds their final state.
    public func evictPersisted(_ trips: some Sequence<Trip>) {
        for trip in trips where trip.status.isFinished {
            shard(for: trip.id).actors.withLock { $0[trip.id] = nil }
            index.remove(trip.id)
        }
    }

    @discardableResult
    private func register(_ trip: Trip) -> TripActor {
        let actor = TripActor(trip: trip, users: users, index: index, changes: changes)
        shard(for: trip.id).actors.withLock { $0[trip.id] = actor }
        index.upsert(trip)
        return actor
    }

    private func shard(for id: UUID) -> TripShard {
        shards[Int(UInt(bitPattern: id.hashValue) % UInt(shards.count))]
    }
}

/// One slice of the trip registry.
private final class TripShard: Sendable {
    let actors = Mutex<[UUID: TripActor]>([:])
}
