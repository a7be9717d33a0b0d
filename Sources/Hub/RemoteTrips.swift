import Foundation

/// Trips that live on other nodes of a cluster, and the cluster's view of this node's
/// connections. A single hub has none; in cluster mode the hub asks it only after its own
/// look-up missed, so a trip this node owns never leaves the node.
public protocol RemoteTrips: Sendable {
    /// Applies a client's update to the trip on the node that owns it; answers as `Hub.updateTrip`.
    func update(trip: UUID, _ update: TripUpdate, by sender: Principal, from mailbox: any Mailbox) async throws(HubError) -> TripView
    /// Cancels the trip on the node that owns it; the sender's connection joins the trip's group
    /// there, so it hears the cancel.
    func cancel(trip: UUID, by sender: Principal, from mailbox: any Mailbox) async throws(HubError) -> TripView
    /// Declines the sender's offer of the trip on the node that owns it; answers as `Hub.declineTrip`.
    func decline(trip: UUID, by sender: Principal, from mailbox: any Mailbox) async throws(HubError)
    /// Has the owner replay what `mailbox` missed after `lastSeen`; the events reach the mailbox.
    func resume(trip: UUID, after lastSeen: Int64, by sender: Principal, from mailbox: any Mailbox) async throws(HubError)
    /// Hands a driver's fix to the node that owns the trip it drives; never waits.
    func recordLocation(_ fix: LocationFix, trip: UUID, driverID: Int, from mailbox: any Mailbox)
    /// A connection joined this hub (`Hub.connect`).
    func connected(_ principal: Principal, mailbox: any Mailbox)
    /// A connection left this hub (`Hub.disconnect`).
    func disconnected(_ principal: Principal, mailbox: any Mailbox)
    /// This hub now owns a live trip (created here, or restored from the store).
    func opened(trip: UUID)
    /// A finished trip of this hub left memory.
    func evicted(trip: UUID)
}
