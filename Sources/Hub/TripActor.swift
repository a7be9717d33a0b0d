import Foundation

/// Owns one live trip: its state, the connections in its group, and the drivers it was
/// offered to. Every change goes through here, so concurrent accepts are ordered and
/// exactly one driver wins. Fan-out only enqueues into mailboxes; it never suspends.
public actor TripActor {
    private var trip: Trip
    private var members: [ConnectionID: any Mailbox] = [:]
    private var offeredTo: [ConnectionID: any Mailbox] = [:]
    private let users: UserDirectory
    private let index: TripIndex
    private let changes: ChangeTracker

    init(trip: Trip, users: UserDirectory, index: TripIndex, changes: ChangeTracker) {
        self.trip = trip
        self.users = users
        self.index = index
        self.changes = changes
    }

    public var current: Trip { trip }

    public var view: TripView {
        users.view(of: trip)
    }

    public var memberCount: Int { members.count }

    func join(_ mailbox: any Mailbox) {
        members[mailbox.connectionID] = mailbox
    }

    func leave(_ connection: ConnectionID) {
        members[connection] = nil
        offeredTo[connection] = nil
    }

    /// Alerts drivers of a trip that still waits for one, and remembers them so they learn
    /// when it is taken.
    func offer(to drivers: [any Mailbox]) {
        guard trip.status == .requested else { return }
        let event = HubEvent.trip(view)
        for driver in drivers where members[driver.connectionID] == nil {
            offeredTo[driver.connectionID] = driver
            driver.deliver(event)
        }
    }

    /// Sends the trip's current state to its group (used right after creation).
    func publish() {
        let event = HubEvent.trip(view)
        for member in members.values { member.deliver(event) }
    }

    /// What an accepted update changed beyond the trip itself.
    struct UpdateOutcome {
        let view: TripView
        /// Drivers whose offer of this trip ended because it left `REQUESTED`.
        let withdrawnOffers: [ConnectionID]
    }

    /// Validates and applies an update; on success the sender joins the group and everyone
    /// in it gets the new state once, and drivers the trip was offered to learn it left `REQUESTED`.
    func update(_ update: TripUpdate, by sender: Principal, from mailbox: any Mailbox) throws(HubError) -> UpdateOutcome {
        let previous = trip
        trip = try TripRules.apply(update, by: sender, to: trip)
        index.upsert(trip)
        changes.record(trip)
        members[mailbox.connectionID] = mailbox
        let updated = view
        let event = HubEvent.trip(updated)
        for member in members.values { member.deliver(event) }
        guard previous.status == .requested else { return UpdateOutcome(view: updated, withdrawnOffers: []) }
        for (id, driver) in offeredTo where members[id] == nil { driver.deliver(event) }
        let withdrawn = Array(offeredTo.keys)
        offeredTo = [:]
        return UpdateOutcome(view: updated, withdrawnOffers: withdrawn)
    }
}
