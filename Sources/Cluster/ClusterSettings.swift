/// How one node takes part in a cluster.
public struct ClusterSettings: Sendable {
    /// This node's name: unique in the cluster, stable across restarts (`[a-z0-9-]`, 1 to 32).
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

    /// Why `nodeID` cannot name a node, or nil when it can.
    public static func problem(withNodeID nodeID: String) -> String? {
        let allowed = nodeID.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") }
        guard (1...32).contains(nodeID.utf8.count), allowed else {
            return "nodeId must be 1 to 32 characters of a-z, 0-9 and -, not \"\(nodeID)\"."
        }
        return nil
    }
}
