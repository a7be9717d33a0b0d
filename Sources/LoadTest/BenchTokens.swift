import Synchronization

/// The simulated users' access tokens, by node and connection index (drivers, then riders),
/// renewed through that node's `/bench/users` (same prefixes, so the same users) when it refuses
/// one with 401: it expired, or the restarted hub signs with another secret. Many sockets
/// refused at once by one node share one renewal. A node that gave no tokens yet (it did not
/// answer at the start) is offered another node's: the nodes of a cluster share their secret,
/// and any other node answers 401, which fetches its own.
final class BenchTokens: Sendable {
    private struct Node {
        var tokens: [String]?
        /// Counts renewals; a caller names the one its refused token came from.
        var generation = 0
        var renewal: Task<Void, Never>?
    }

    private let state: Mutex<[Node]>
    private let hubs: HubNodes
    private let batches: [HubNodes.Batch]

    /// `tokens` by node (nil: none yet), as `HubNodes.benchUsers(batches)` gave them.
    init(tokens: [[String]?], hubs: HubNodes, batches: [HubNodes.Batch]) {
        state = Mutex(tokens.map { Node(tokens: $0) })
        self.hubs = hubs
        self.batches = batches
    }

    /// The token of connection `index` on `node`, and the generation it belongs to.
    func token(_ index: Int, node: Int) -> (token: String, generation: Int) {
        state.withLock { nodes in
            let tokens = nodes[node].tokens ?? nodes.lazy.compactMap(\.tokens).first ?? []
            return (tokens.indices.contains(index) ? tokens[index] : "", nodes[node].generation)
        }
    }

    /// Renews `node`'s tokens, unless that happened since `generation`; returns once the renewal
    /// in progress ended (successful or not: a failed one is tried again at the next 401).
    func renew(node: Int, after generation: Int) async {
        let renewal = state.withLock { nodes -> Task<Void, Never>? in
            guard nodes[node].generation == generation else { return nil }
            if let renewal = nodes[node].renewal { return renewal }
            let renewal = Task { await self.fetch(node) }
            nodes[node].renewal = renewal
            return renewal
        }
        await renewal?.value
    }

    private func fetch(_ node: Int) async {
        let fresh = try? await hubs.benchUsers(batches, on: node).map(\.access)
        let count = batches.map(\.count).reduce(0, +)
        state.withLock { nodes in
            if let fresh, fresh.count == count {
                nodes[node].tokens = fresh
                nodes[node].generation += 1
            }
            nodes[node].renewal = nil
        }
    }
}
