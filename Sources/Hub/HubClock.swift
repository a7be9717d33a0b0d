/// Where the hub reads the time: trip time stamps (`created`, `updated`) and the age check of GPS
/// fixes. The product uses the wall clock; the deterministic simulator (`HubSimulation`) gives the
/// hub a clock that only moves when the simulation says so, so a seed replays the same times.
public protocol HubClock: Sendable {
    func now() -> Timestamp
}

/// The wall clock, `Timestamp.now()`.
public struct WallClock: HubClock {
    public init() {}

    public func now() -> Timestamp { .now() }
}
