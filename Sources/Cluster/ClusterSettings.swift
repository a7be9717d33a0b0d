/// How one node takes part in a cluster.
public struct ClusterSettings: Sendable {
    /// This node's name: unique in the cluster, stable across restarts (`[a-z0-9-]`, 1 to 32:
    /// `ClusterNodeID`).
    public var nodeID: String
    /// NATS servers to connect to (`nats://host:port`).
    public var natsURLs: [String]
    /// How long a node's lease on its trips lasts without renewal; renewed every third of it.
    public var lease: Duration = .seconds(5)
    /// How often this node tells the others where its drivers are (only what changed).
    public var driverGossipInterval: Duration = .seconds(1)
    /// How long a request to another node (an accept, a resume) may take before the client is
    /// told the trip's node is unavailable.
    public var requestTimeout: Duration = .seconds(2)

    public init(nodeID: String, natsURLs: [String]) {
        self.nodeID = nodeID
        self.natsURLs = natsURLs
    }
}
