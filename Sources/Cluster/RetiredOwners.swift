import Synchronization

/// The node runs (node id and incarnation) that another node took over: their trips have a new
/// owner, so an answer from one of them is stale, whatever it says. Requesters drop such answers
/// (`ClusterNode.ask`), on top of the owner's own fencing (a node past its local lease deadline
/// answers nothing). Told by this node's own takeovers and by the others' takeover notices.
///
/// Bounded: a run is retired once and never comes back (a restart is a new incarnation), so the
/// oldest entries are forgotten first.
final class RetiredOwners: Sendable {
    struct Run: Hashable, Sendable {
        let node: String
        let incarnation: UInt64
    }

    private struct State {
        var runs: Set<Run> = []
        var order: [Run] = []
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int = 1024) {
        self.capacity = capacity
    }

    func retire(node: String, incarnation: UInt64) {
        let run = Run(node: node, incarnation: incarnation)
        state.withLock { state in
            guard state.runs.insert(run).inserted else { return }
            state.order.append(run)
            if state.order.count > capacity {
                state.runs.remove(state.order.removeFirst())
            }
        }
    }

    func isRetired(node: String, incarnation: UInt64) -> Bool {
        state.withLock { $0.runs.contains(Run(node: node, incarnation: incarnation)) }
    }
}
