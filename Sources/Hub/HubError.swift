/// Why the hub refused a request. The web layer turns `code` into the wire's error code.
public struct HubError: Error, Sendable, Equatable {
    public enum Code: String, Sendable {
        case invalid
        case forbidden
        case notFound = "not_found"
        case tripTaken = "trip_taken"
        case invalidTransition = "invalid_transition"
        /// In a cluster: the node that owns the trip cannot be reached now (it is being replaced).
        case unavailable
        /// `decline.trip` of a trip the driver holds no live offer of.
        case noOffer = "no_offer"
        /// `IN_PROGRESS` farther than `pickupRadius` from the trip's pick-up point.
        case tooFarFromPickUp = "too_far_from_pickup"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}
