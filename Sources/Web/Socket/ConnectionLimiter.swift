import Synchronization

/// Counts open WebSockets against a cap below the open-files limit, because a server that
/// runs out of descriptors crashes instead of refusing politely.
final class ConnectionLimiter: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)
    private let nextID = Atomic<UInt64>(1)

    init(limit: Int) {
        self.limit = limit
    }

    var current: Int { open.load(ordering: .relaxed) }

    var hasRoom: Bool { current < limit }

    /// Takes a slot, or returns nil when the cap is reached.
    func acquire() -> UInt64? {
        var value = open.load(ordering: .relaxed)
        while value < limit {
            let (exchanged, original) = open.compareExchange(expected: value, desired: value + 1, ordering: .acquiringAndReleasing)
            if exchanged { return nextID.wrappingAdd(1, ordering: .relaxed).oldValue }
            value = original
        }
        return nil
    }

    func release() {
        open.subtract(1, ordering: .acquiringAndReleasing)
    }
}
