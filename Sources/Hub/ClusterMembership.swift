import Foundation

// What the server needs of the cluster a hub is one node of. `Cluster` implements these
// protocols; the web layer calls them and never sees the cluster's own types; the executable
// (`taxi-hub serve`) hands the one to the other when NATS is configured. A single hub has none.
// See docs/architecture.md.

/// Makes a batch of durable changes (trip changes, sign-ups) durable, or throws: the write a
/// `GroupCommitLog` does for each group of commits.
public protocol CommitWriter: Sendable {
    /// Makes `batch` durable before returning; a throw ends the commit log (see `GroupCommitLog`).
    func commit(_ batch: [DurableChange]) async throws
}

/// How a hub becomes one node of a cluster.
public protocol ClusterJoining: Sendable {
    /// This node's name in the cluster (see `ClusterNodeID`).
    var nodeID: String { get }

    /// Commits trip changes and sign-ups under this node's lease, for the hub's commit log. The log
    /// is made with the hub, before the node joins: until `join` returned, every commit fails.
    var commits: any CommitWriter { get }

    /// Takes this node's lease and joins `hub` to the cluster (`Hub.attach`). Call it before the
    /// hub loads its state: the trips it loads are then its own before any other node could take
    /// them over, and each reaches the other nodes as it is restored.
    func join(_ hub: Hub) async throws -> any ClusterMember
}

/// Accounts in a cluster: a username is unique across the nodes, and every node learns of a
/// sign-up on another.
public protocol ClusterAccounts: Sendable {
    /// Creates a user for a sign-up on this node, once it is durable; nil when the username is
    /// taken on any node.
    func signUp(
        username: String, firstName: String, lastName: String, group: UserGroup, photo: String?, passwordHash: String
    ) async throws -> User?

    /// A user this node has not heard of yet (signed up on another node while the nodes could not
    /// talk); nil when there is none, or it cannot be looked up now.
    func findUser(username: String) async -> User?
}

/// The live trips of every node, for lists: a trip another node owns is not in this hub's memory.
public protocol ClusterTrips: Sendable {
    /// Unfinished trips where the user is rider or driver, and with `includingRequested` every
    /// `REQUESTED` one too, whichever node owns them, as committed (every trip change is committed
    /// before it is acknowledged). This node's own trips are among them, as committed.
    func unfinishedTrips(involving userID: Int, includingRequested: Bool) async throws -> [Trip]
}

/// How a node's link to the rest of the cluster is doing, as `/readyz` reports it.
public struct ClusterHealth: Sendable, Equatable {
    public var nodeID: String
    public var natsConnected: Bool
    public var leaseRenewed: Bool
    /// Why the last lease renewal failed, while it fails.
    public var lastLeaseError: String?

    public init(nodeID: String, natsConnected: Bool, leaseRenewed: Bool, lastLeaseError: String?) {
        self.nodeID = nodeID
        self.natsConnected = natsConnected
        self.leaseRenewed = leaseRenewed
        self.lastLeaseError = lastLeaseError
    }

    /// Serving its own clients, but not reaching the rest of the cluster.
    public var isDegraded: Bool { !natsConnected || !leaseRenewed }
}

/// What a node says about itself on `/readyz` and `/metrics`.
public protocol ClusterReporting: Sendable {
    var health: ClusterHealth { get }
    /// The cluster's lines of `/metrics` (Prometheus text format, each line ending in a newline).
    func prometheusText() -> String
}

/// What a node does on its own schedule, for the life of the server.
public protocol ClusterDuties: Sendable {
    /// Renews the node's lease and takes over nodes whose lease ran out, handles the other nodes'
    /// notices, tells them where this node's drivers are, and stops the process when the lease's
    /// local deadline passes. Returns once the calling task is cancelled.
    func runDuties() async
    /// Leaves the cluster: no more messages. The lease runs out, and another node takes the trips
    /// over unless this node comes back first.
    func stop()
}

/// A hub's node in a cluster, as the server sees it once the node joined.
public protocol ClusterMember: ClusterAccounts, ClusterTrips, ClusterReporting, ClusterDuties {}

/// What may name a cluster node: the name goes into the subjects the nodes talk on and into the
/// shared database.
public enum ClusterNodeID {
    /// Why `nodeID` cannot name a node, or nil when it can: 1 to 32 characters of `a-z`, `0-9`, `-`.
    public static func problem(with nodeID: String) -> String? {
        let allowed = nodeID.utf8.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                || $0 == UInt8(ascii: "-")
        }
        guard (1...32).contains(nodeID.utf8.count), allowed else {
            return "nodeId must be 1 to 32 characters of a-z, 0-9 and -, not \"\(nodeID)\"."
        }
        return nil
    }
}
