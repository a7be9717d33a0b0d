import Foundation
import Hub
import Synchronization

/// One simulated client connection's outbound queue. The harness reads what arrived instead of a
/// socket. A slow client leaves events queued; queued locations coalesce (latest per trip wins,
/// as the server's queue does) and the replaced `seq`s are remembered, so a gap they leave is
/// explained. Events after `close()` are dropped, as a closed socket's would be.
final class SimMailbox: Mailbox {
    /// How an event reached the client.
    enum Arrival: Sendable, Equatable {
        case live
        case replay
    }

    struct Received: Sendable {
        let event: HubEvent
        let arrival: Arrival
    }

    private struct State {
        var queued: [Received] = []
        var received: [Received] = []
        var coalesced: [(trip: UUID, seq: Int64)] = []
        var slow = false
        var closed = false
    }

    let connectionID: ConnectionID
    private let state = Mutex(State())

    init(connectionID: ConnectionID) {
        self.connectionID = connectionID
    }

    func deliver(_ event: HubEvent) {
        state.withLock { state in
            guard !state.closed else { return }
            let item = Received(event: event, arrival: .live)
            guard state.slow else {
                state.received.append(item)
                return
            }
            if case .location = event,
                let index = state.queued.lastIndex(where: {
                    if case .location = $0.event, $0.arrival == .live { return $0.event.tripID == event.tripID }
                    return false
                })
            {
                state.coalesced.append((event.tripID, state.queued[index].event.seq))
                state.queued.remove(at: index)
            }
            state.queued.append(item)
        }
    }

    func replay(_ events: [HubEvent]) {
        state.withLock { state in
            guard !state.closed else { return }
            let items = events.map { Received(event: $0, arrival: .replay) }
            if state.slow { state.queued += items } else { state.received += items }
        }
    }

    /// Makes the client slow (events queue up) or lets it read everything queued.
    func setSlow(_ slow: Bool) {
        state.withLock { state in
            state.slow = slow
            if !slow {
                state.received += state.queued
                state.queued = []
            }
        }
    }

    var isSlow: Bool { state.withLock { $0.slow } }

    /// Closes the connection and returns what was still queued, unread by the client.
    func close() -> [Received] {
        state.withLock { state in
            state.closed = true
            defer { state.queued = [] }
            return state.queued
        }
    }

    /// Takes what the client read since the last call, and the locations coalesced meanwhile.
    func take() -> (received: [Received], coalesced: [(trip: UUID, seq: Int64)]) {
        state.withLock { state in
            defer {
                state.received = []
                state.coalesced = []
            }
            return (state.received, state.coalesced)
        }
    }
}
