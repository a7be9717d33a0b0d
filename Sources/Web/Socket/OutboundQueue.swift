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

/// One connection's outbound queue: bounded, never blocking the sender, with locations coalesced,
/// and drained on demand.
///
/// State changes and replies queue in order up to `limit`; one more means the client reads too
/// slowly (`enqueue` refuses it). A location replaces the same trip's location still waiting in
/// the queue (latest wins), unless a state change of that trip was queued after it, so per trip
/// the client still sees `seq` ascending. Memory stays bounded: at most `limit` state items plus
/// one location per trip the client follows (and one per queued state change).
///
/// No task waits on an empty queue: the enqueue that finds the queue idle is told to start a
/// drain, which takes items until `next()` reports the queue idle again. An idle connection
/// thus costs no writer task.
final class OutboundQueue: Sendable {
    /// What `enqueue` did.
    enum Admission: Equatable {
        /// Queued; nobody drains the queue yet, so the caller starts a drain.
        case startDrain
        /// Queued; a drain already runs.
        case queued
        /// Not queued: the queue is full or finished.
        case refused
    }

    /// What a drain gets from `next()`.
    enum Next: Equatable {
        case item(Outbound)
        /// Nothing waits: the drain ends (the next enqueue starts another).
        case idle
        /// The queue was finished: the drain ends, and no other drain ever starts.
        case finished
    }

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
        /// Items in the queue held against the limit.
        var ordered = 0
        var finished = false
        var draining = false
    }

    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Queues an item. With `coalescing` off, a location queues like a state change (replays
    /// keep every event).
    func enqueue(_ item: Outbound, coalescing: Bool = true) -> Admission {
        state.withLock { state in
            guard !state.finished else { return .refused }
            if coalescing, case .event(.location(let location)) = item {
                if let index = state.replaceableLocation[location.tripID] {
                    state.items[index - state.taken].item = item
                } else {
                    state.replaceableLocation[location.tripID] = state.taken + state.items.count
                    state.items.append(Entry(item: item, counts: false))
                }
            } else {
                guard state.ordered < limit else { return .refused }
                if case .event(let event) = item {
                    state.replaceableLocation[event.tripID] = nil
                }
                state.items.append(Entry(item: item, counts: true))
                state.ordered += 1
            }
            guard state.draining else {
                state.draining = true
                return .startDrain
            }
            return .queued
        }
    }

    /// The oldest item for the drain; `idle` or `finished` end the drain.
    func next() -> Next {
        state.withLock { state in
            if state.finished { return .finished }
            guard let entry = state.items.popFirst() else {
                state.draining = false
                return .idle
            }
            state.taken += 1
            if entry.counts {
                state.ordered -= 1
            } else if case .event(.location(let location)) = entry.item,
                state.replaceableLocation[location.tripID] == state.taken - 1
            {
                state.replaceableLocation[location.tripID] = nil
            }
            return .item(entry.item)
        }
    }

    /// Ends the queue and drops what waits. Returns true when no drain runs, so the caller starts
    /// one to see `finished` (and, say, send a close frame).
    func finish() -> Bool {
        state.withLock { state in
            state.finished = true
            state.items = []
            state.replaceableLocation = [:]
            state.ordered = 0
            defer { state.draining = true }
            return !state.draining
        }
    }

    /// Items waiting (for tests and metrics).
    var count: Int { state.withLock { $0.items.count } }
}
