import Hub
import Synchronization

/// How the node's link to the cluster is doing, for `/readyz` and `/metrics`.
public final class ClusterStatus: Sendable {
    public struct Current: Sendable {
        public var natsConnected = false
        public var leaseRenewed = false
        public var lastLeaseError: String?
        public var takeovers = 0
        public var tripsTakenOver = 0
        public var failedRequests = 0
        public var staleAnswersDropped = 0
        public var liveNodes = 0
    }

    private let state = Mutex(Current())

    public init() {}

    public var current: Current { state.withLock { $0 } }

    /// Serving its own clients, but not reaching the rest of the cluster.
    public var isDegraded: Bool {
        let current = current
        return !current.natsConnected || !current.leaseRenewed
    }

    func natsState(_ connected: Bool) { state.withLock { $0.natsConnected = connected } }

    func lease(renewed: Bool, error: String?) {
        state.withLock {
            $0.leaseRenewed = renewed
            $0.lastLeaseError = error
        }
    }

    func tookOver(trips: Int) {
        state.withLock {
            $0.takeovers += 1
            $0.tripsTakenOver += trips
        }
    }

    func requestFailed() { state.withLock { $0.failedRequests += 1 } }

    func staleAnswerDropped() { state.withLock { $0.staleAnswersDropped += 1 } }

    func liveNodes(_ count: Int) { state.withLock { $0.liveNodes = count } }
}

extension ClusterNode {
    /// How the node is doing, for `/readyz`.
    public var health: ClusterHealth {
        let current = status.current
        return ClusterHealth(
            nodeID: settings.nodeID, natsConnected: current.natsConnected, leaseRenewed: current.leaseRenewed,
            lastLeaseError: current.lastLeaseError
        )
    }

    /// The cluster's lines of `/metrics` (Prometheus text format).
    public func prometheusText() -> String {
        let current = status.current
        var lines = [
            "# HELP taxihub_cluster_nats_connected 1 while this node's NATS connection is up.",
            "# TYPE taxihub_cluster_nats_connected gauge",
            "taxihub_cluster_nats_connected \(current.natsConnected ? 1 : 0)",
            "# HELP taxihub_cluster_degraded 1 while this node serves only its own clients (NATS or its lease is down).",
            "# TYPE taxihub_cluster_degraded gauge",
            "taxihub_cluster_degraded \(status.isDegraded ? 1 : 0)",
            "# HELP taxihub_cluster_nodes_live Nodes holding a lease, as last read from PostgreSQL.",
            "# TYPE taxihub_cluster_nodes_live gauge",
            "taxihub_cluster_nodes_live \(current.liveNodes)",
            "# HELP taxihub_cluster_takeovers_total Expired nodes this node took over.",
            "# TYPE taxihub_cluster_takeovers_total counter",
            "taxihub_cluster_takeovers_total \(current.takeovers)",
            "# HELP taxihub_cluster_trips_taken_over_total Trips this node took over from expired nodes.",
            "# TYPE taxihub_cluster_trips_taken_over_total counter",
            "taxihub_cluster_trips_taken_over_total \(current.tripsTakenOver)",
            "# HELP taxihub_cluster_failed_requests_total Requests to other nodes that got no answer.",
            "# TYPE taxihub_cluster_failed_requests_total counter",
            "taxihub_cluster_failed_requests_total \(current.failedRequests)",
            "# HELP taxihub_cluster_stale_answers_dropped_total Answers from a node run that was taken over, dropped.",
            "# TYPE taxihub_cluster_stale_answers_dropped_total counter",
            "taxihub_cluster_stale_answers_dropped_total \(current.staleAnswersDropped)",
            "# HELP taxihub_cluster_remote_connections Connections of other nodes this node knows.",
            "# TYPE taxihub_cluster_remote_connections gauge",
            "taxihub_cluster_remote_connections \(remotes.count)",
            "# HELP taxihub_cluster_messages_total NATS messages by direction and kind.",
            "# TYPE taxihub_cluster_messages_total counter",
        ]
        let tallies = link.tallies
        var bytes: [String] = ["# HELP taxihub_cluster_bytes_total NATS payload bytes by direction and kind.", "# TYPE taxihub_cluster_bytes_total counter"]
        for (direction, tally) in [("sent", tallies.sent), ("received", tallies.received)] {
            for kind in ClusterLink.Kind.allCases {
                let counted = tally[kind] ?? .init()
                lines.append("taxihub_cluster_messages_total{direction=\"\(direction)\",kind=\"\(kind.rawValue)\"} \(counted.messages)")
                bytes.append("taxihub_cluster_bytes_total{direction=\"\(direction)\",kind=\"\(kind.rawValue)\"} \(counted.bytes)")
            }
        }
        return (lines + bytes).joined(separator: "\n") + "\n"
    }
}
