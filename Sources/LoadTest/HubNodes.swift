import Foundation

/// The hubs under test: one `--url` each. A single hub, or the nodes of a cluster (docs/cluster.md),
/// or separate hubs whose users were made alike. Client `i` starts on node `i % count`; its
/// HTTP calls (tokens, log-ins, sign-ups) go to the node it uses.
struct HubNodes: Sendable {
    /// A batch of `/bench/users`: `PREFIX-1` … `PREFIX-count` in `group`.
    struct Batch: Sendable {
        let prefix: String
        let count: Int
        let group: String
    }

    /// Bench users made on every node that answered.
    struct Users: Sendable {
        /// The users of the batches, in order, as the first node that answered gave them.
        let users: [HubEndpoint.BenchUser]
        /// Their tokens by node; nil for a node that did not answer.
        let tokens: [[String]?]
        /// Why each node that did not answer failed.
        let unreachable: [Int: String]

        /// The nodes that answered.
        var reachable: [Int] { tokens.indices.filter { tokens[$0] != nil } }
    }

    let endpoints: [HubEndpoint]

    init(urls: [String]) throws {
        endpoints = try urls.map(HubEndpoint.init(url:))
    }

    var count: Int { endpoints.count }

    subscript(node: Int) -> HubEndpoint { endpoints[node] }

    /// The node client `index` starts on.
    func node(for index: Int) -> Int { index % endpoints.count }

    /// The node after `node` in the list, wrapping: where a client goes when `node` fails it.
    func node(after node: Int) -> Int { (node + 1) % endpoints.count }

    /// Creates (or reuses) the batches' users on every node. A node that does not answer is
    /// left out (its clients will move on to the next node); a hub without `/bench/` routes, or
    /// no node answering, is an error. The nodes must agree on the users' ids: the nodes of a
    /// cluster share their users; separate hubs agree when they made them alike (fresh hubs).
    func benchUsers(_ batches: [Batch]) async throws -> Users {
        var tokens = [[String]?](repeating: nil, count: count)
        var unreachable: [Int: String] = [:]
        var reference: (node: Int, users: [HubEndpoint.BenchUser])?
        for node in endpoints.indices {
            let users: [HubEndpoint.BenchUser]
            do {
                users = try await benchUsers(batches, on: node)
            } catch let error as HubEndpoint.Unusable {
                throw error
            } catch {
                unreachable[node] = (error as NSError).userInfo[NSLocalizedDescriptionKey] as? String ?? "\(error)"
                continue
            }
            if let reference, reference.users.map(\.id) != users.map(\.id) {
                throw HubEndpoint.Unusable(
                    description: "\(endpoints[node].base) gave the bench users other ids than \(endpoints[reference.node].base): "
                        + "the hubs must share their users (one cluster) or have made them alike (e.g. fresh hubs)."
                )
            }
            if reference == nil { reference = (node, users) }
            tokens[node] = users.map(\.access)
        }
        guard let reference else {
            let reasons = unreachable.sorted { $0.key < $1.key }.map { "\(endpoints[$0.key].base): \($0.value)" }
            throw HubEndpoint.Unusable(description: "No hub answered /bench/users (\(reasons.joined(separator: "; "))).")
        }
        return Users(users: reference.users, tokens: tokens, unreachable: unreachable)
    }

    /// The batches' users as `node` gives them.
    func benchUsers(_ batches: [Batch], on node: Int) async throws -> [HubEndpoint.BenchUser] {
        var users: [HubEndpoint.BenchUser] = []
        for batch in batches {
            users += try await endpoints[node].benchUsers(prefix: batch.prefix, count: batch.count, group: batch.group)
        }
        return users
    }

    /// Every node's CPU time and memory (nil: the node did not answer). While no node answers,
    /// tries for up to `patience` (a hub restarting); once one has answered, a node still silent
    /// is left out of this reading (waiting for it would shift the measured window).
    func processReadings(patience: Duration = .seconds(60), grace: Duration = .zero) async throws -> [HubEndpoint.ProcessReading?] {
        var readings = [HubEndpoint.ProcessReading?](repeating: nil, count: count)
        var deadline = ContinuousClock.now + patience
        var lastError: (any Error)?
        var answered = false
        while true {
            for node in endpoints.indices where readings[node] == nil {
                do {
                    readings[node] = try await endpoints[node].processReading()
                } catch {
                    lastError = error
                }
            }
            if !readings.contains(where: { $0 == nil }) { return readings }
            if !answered, readings.contains(where: { $0 != nil }) {
                answered = true
                deadline = min(deadline, ContinuousClock.now + grace)
            }
            guard ContinuousClock.now < deadline else {
                if answered { return readings }
                throw lastError ?? HubEndpoint.Unusable(description: "/metrics gave no reading")
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}
