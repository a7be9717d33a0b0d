/// The connected drivers who can be alerted of new trips.
///
/// One group holds every driver for now; nearby dispatch splits drivers into one group per
/// geo cell, which is why the hub asks for a group rather than holding the members itself.
public actor DriverGroup {
    private var members: [ConnectionID: any Mailbox] = [:]

    public init() {}

    func join(_ mailbox: any Mailbox) {
        members[mailbox.connectionID] = mailbox
    }

    func leave(_ connection: ConnectionID) {
        members[connection] = nil
    }

    /// The drivers to alert of a new trip.
    func driversToAlert() -> [any Mailbox] {
        Array(members.values)
    }

    public var count: Int { members.count }
}
