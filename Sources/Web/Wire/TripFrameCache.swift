import DequeModule
import Foundation
import Synchronization

/// The encoded frames of recent trip states, by trip and `seq`.
///
/// One trip event goes to many sockets (a request to its ten nearest drivers, a state change to
/// the rider, the driver and the drivers it was offered to), and a trip's state at a given `seq`
/// never changes, so each is encoded once and shared. Bounded: the oldest entries leave first.
final class TripFrameCache: Sendable {
    struct Key: Hashable {
        let tripID: UUID
        let seq: Int64
    }

    private struct State {
        var frames: [Key: String] = [:]
        var order: Deque<Key> = []
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 4_096) {
        self.capacity = max(1, capacity)
    }

    /// The cached frame for `key`, or `encode()`'s result, kept for the next caller.
    func frame(for key: Key, encode: () -> String) -> String {
        if let cached = state.withLock({ $0.frames[key] }) { return cached }
        let frame = encode()
        state.withLock { state in
            guard state.frames.updateValue(frame, forKey: key) == nil else { return }
            state.order.append(key)
            if state.order.count > capacity, let oldest = state.order.popFirst() {
                state.frames[oldest] = nil
            }
        }
        return frame
    }

    var count: Int { state.withLock { $0.frames.count } }
}
