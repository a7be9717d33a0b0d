import Foundation
import Hub
import Synchronization

/// One simulated client connection's outbound queue. The harness reads what arrived instead of a
/// socket. A slow client leaves events queued; queued locations coalesce (latest per trip wins,
/// as the server's queue does) and the replaced `seq`s are remembered, so a gap they leave is
/// explained. Events after `close()` are dropped, as a closed socket's would be. The end of a
/// trip's `resume` (`resumeEnded`) is an item of the same stream, in order with the events, as the
/// web layer's `resume.done` frame is in its outbound queue: the harness reads it exactly where a
/// client would.
///
/// Given the harness's journal, it checks the moment it is handed a trip state (live or
/// replayed) that the state was durable then: a client must never hear of a change a crash could
/// still undo. A breach is kept for the harness, which fails the run when it reads the mailbox.
final class SimMailbox: Mailbox {
    /// How an event reached the client.
    enum Arrival: Sendable, Equatable {
        case live
        case replay
    }

    /// One item the client reads: an event, or the end-of-replay mark of one trip's `resume`.
    enum Received: Sendable {
        case event(HubEvent, Arrival)
        case resumeEnded(trip: UUID, through: Int64)
    }

    private struct State {
        var queued: [Received] = []
        var received: [Received] = []
        var coalesced: [(trip: UUID, seq: Int64)] = []
        var slow = false
        var closed = false
        /// Trip states handed over before they were durable.
        var early: [Trip] = []
    }

    let connectionID: ConnectionID
    private let state = Mutex(State())
    private let journal: SimJournal?

    init(connectionID: ConnectionID, checkingDurabilityIn journal: SimJournal? = nil) {
        self.connectionID = connectionID
        self.journal = journal
    }

    /// Notes a trip state that was not durable when it was handed over (call with the lock held,
    /// the mailbox open).
    private func check(_ event: HubEvent, _ state: inout State) {
        guard let journal, let view = event.tripState, !journal.isDurable(view.trip) else { return }
        state.early.append(view.trip)
    }

    func deliver(_ event: HubEvent) {
        state.withLock { state in
            guard !state.closed else { return }
            check(event, &state)
            let item = Received.event(event, .live)
            guard state.slow else {
                state.received.append(item)
                return
            }
            if case .location = event,
                let index = state.queued.lastIndex(where: {
                    if case .event(let queued, .live) = $0, case .location = queued { return queued.tripID == event.tripID }
                    return false
                }),
                case .event(let replaced, _) = state.queued[index]
            {
                state.coalesced.append((event.tripID, replaced.seq))
                state.queued.remove(at: index)
            }
            state.queued.append(item)
        }
    }

    func replay(_ events: [HubEvent]) {
        state.withLock { state in
            guard !state.closed else { return }
            for event in events { check(event, &state) }
            let items = events.map { Received.event($0, .replay) }
            if state.slow { state.queued += items } else { state.received += items }
        }
    }

    func resumeEnded(trip: UUID, through seq: Int64) {
        state.withLock { state in
            guard !state.closed else { return }
            let item = Received.resumeEnded(trip: trip, through: seq)
            if state.slow { state.queued.append(item) } else { state.received.append(item) }
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

    /// Takes what the client read since the last call, the locations coalesced meanwhile, and
    /// the trip states handed over before they were durable.
    func take() -> (received: [Received], coalesced: [(trip: UUID, seq: Int64)], early: [Trip]) {
        state.withLock { state in
            defer {
                state.received = []
                state.coalesced = []
                state.early = []
            }
            return (state.received, state.coalesced, state.early)
        }
    }
}
