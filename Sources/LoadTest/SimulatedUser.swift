import SocketClient

/// What the client pool needs of a simulated driver or rider: its socket comes and goes.
protocol SimulatedUser: AnyObject, Sendable {
    /// The user's current socket.
    func attach(_ client: WebSocketClient)
    /// `client` closed; the user is offline unless it already has another.
    func detach(_ client: WebSocketClient)
    /// `client` replaced a closed socket: resume what the user was doing.
    func reconnected(_ client: WebSocketClient, in traffic: CityTraffic)
    func received(_ frame: HubFrame, in traffic: CityTraffic)
    /// Driving or riding a trip (what `--drop-every` prefers to drop).
    var isMidTrip: Bool { get }
}
