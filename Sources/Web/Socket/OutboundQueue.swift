import DequeModule
import Foundation
import Hub
import Synchronization

/// Something waiting to be written to one client's socket.
enum Outbound: Sendable, Equatable {
    case event(HubEvent)
    /// A frame already encoded (echo replies, errors).
    case text(String)
}

/// One connection's outbound queue: bounded, never blocking the sender, with locations coalesced.
///
/// State changes and replies queue in order up to `limit`; one more means the client reads too
/// slowly (`enqueue` returns false). A location replaces the same trip's location still waiting
/// in the queue (latest wins), unless a state change of that trip was queued after it, so per
/// trip the client still sees `seq` ascending. Memory stays bounded: at most `limit` state items
/// plus one location per trip the client follows.
final class OutboundQueue: Sendable {
    /// A queued item; `counts` when it is held against `limit` (everything but coalescable locations).
    private struct Entry {
        var item: Outbound
        let counts: Bool
    }

    private struct State {
        var items: Deque<Entry> = []
        /// How many items were taken so far: the absolute index of `items.first`.
        var taken = 0
        /// Absolute index of each trip's location that may still be replaced.
        var replaceableLocation: [UUID: Int] = [:]
        /// Items in the queue other than locations.
        var ordered = 0
        var finished = false
    }

    let limit: Int
    /// Rings once per batch of new items; the writer drains the queue on each ring.
    let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues an item; false when the queue is full (the item is dropped) or finished. With
    /// `coalescing` off, a location queues like a state change (replays keep every event).
    func enqueue(_ item: Outbound, coalescing: Bool = true) -> Bool {
        let accepted = state.withLock { state -> Bool in
            guard !state.finished else { return false }
            if coalescing, case .event(.location(let location)) = item {
                if let index = state.replaceableLocation[location.tripID] {
                    state.items[index - state.taken].item = item
                } else {
                    state.replaceableLocation[location.tripID] = state.taken + state.items.count
                    state.items.append(Entry(item: item, counts: false))
                }
                return true
            }
            guard state.ordered < limit else { return false }
            if case .event(let event) = item {
                state.replaceableLocation[event.tripID] = nil
            }
            state.items.append(Entry(item: item, counts: true))
            state.ordered += 1
            return true
        }
        if accepted { ring.yield() }
        return accepted
    }

    /// The oldest item, or nil when the queue is empty.
    func take() -> Outbound? {
        state.withLock { state in
            guard let entry = state.items.popFirst() else { return nil }
            state.taken += 1
            if entry.counts {
                state.ordered -= 1
            } else if case .event(.location(let location)) = entry.item,
                state.replaceableLocation[location.tripID] == state.taken - 1
            {
                state.replaceableLocation[location.tripID] = nil
            }
            return entry.item
        }
    }

    /// Ends the queue: nothing more is accepted, and the writer stops after its current ring.
    func finish() {
        state.withLock { state in
            state.finished = true
            state.items = []
            state.replaceableLocation = [:]
            state.ordered = 0
        }
        ring.finish()
    }

    /// Items waiting (for tests and metrics).
    var count: Int { state.withLock { $0.items.count } }
}
