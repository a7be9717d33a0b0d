/// Identifies one client connection for the life of the process.
public struct ConnectionID: Sendable, Hashable {
    public let rawValue: UInt64

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }
}

/// Something the hub tells a connected client.
public enum HubEvent: Sendable, Equatable {
    /// A trip was created or changed; carries its nested form.
    case trip(TripView)
}

/// The outbound queue of one connection.
///
/// `deliver` must never block or suspend: implementations enqueue into a bounded buffer that
/// the connection's own writer drains, so an actor that fans out never waits on a socket.
public protocol Mailbox: AnyObject, Sendable {
    var connectionID: ConnectionID { get }
    func deliver(_ event: HubEvent)
}
