import Foundation

/// The connected drivers who can be alerted of new trips, and which trips each was offered.
///
/// One group holds every driver for now; nearby dispatch splits drivers into one group per
/// geo cell, which is why the hub asks for a group rather than holding the members itself.
public actor DriverGroup {
    private var members: [ConnectionID: any Mailbox] = [:]
    /// Trips offered to each driver that may still be waiting for one, so a driver who leaves
    /// can be taken off their offer lists.
    private var offers: [ConnectionID: Set<UUID>] = [:]

    public init() {}

    func join(_ mailbox: any Mailbox) {
        members[mailbox.connectionID] = mailbox
    }

    /// Removes a driver and returns the trips it was offered that have not left `REQUESTED`.
    func leave(_ connection: ConnectionID) -> Set<UUID> {
        members[connection] = nil
        return offers.removeValue(forKey: connection) ?? []
    }

    /// The drivers to alert of a new trip; each is remembered as offered the trip.
    func driversToAlert(for trip: UUID) -> [any Mailbox] {
        for connection in members.keys { offers[connection, default: []].insert(trip) }
        return Array(members.values)
    }

    /// Forgets the offers of a trip that left `REQUESTED`.
    func withdraw(_ trip: UUID, from connections: [ConnectionID]) {
        for connection in connections {
            offers[connection]?.remove(trip)
        }
    }

    public var count: Int { members.count }
}
