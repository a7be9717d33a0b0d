import Hub
import Synchronization

/// The hub's clock under simulation: it stands still until the harness advances it, so times
/// depend on the seed only.
public final class SimClock: HubClock {
    private let micros: Mutex<Int64>

    public init(start: Timestamp = Timestamp(microseconds: 1_800_000_000_000_000)) {
        micros = Mutex(start.microseconds)
    }

    public func now() -> Timestamp {
        Timestamp(microseconds: micros.withLock { $0 })
    }

    func advance(byMicroseconds delta: Int64) {
        micros.withLock { $0 += delta }
    }
}
