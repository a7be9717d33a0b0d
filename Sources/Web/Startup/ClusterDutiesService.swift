import Hub
import ServiceLifecycle

/// Runs a cluster node's duties (its lease, the other nodes' notices, driver gossip) for the life
/// of the server; on a graceful shutdown the node leaves the cluster and its duties end.
struct ClusterDutiesService: Service {
    let node: any ClusterDuties

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await node.runDuties() }
            try? await gracefulShutdown()
            node.stop()
            group.cancelAll()
        }
    }
}
