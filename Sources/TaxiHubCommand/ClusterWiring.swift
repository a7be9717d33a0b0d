import Cluster
import Hub
import Logging
import Persistence
import Web

/// Where `taxi-hub serve` makes the hub one node of a cluster (docs/cluster.md): the only place
/// that knows both the web layer and the cluster's types. Web gets the cluster as `Hub`'s
/// protocols (`ClusterWiring`).
extension HubConfiguration {
    /// How this hub takes part in a cluster; nil for a single hub.
    var clusterSettings: ClusterSettings? {
        guard !natsURLs.isEmpty, let nodeID else { return nil }
        var settings = ClusterSettings(nodeID: nodeID, natsURLs: natsURLs)
        settings.lease = clusterLease
        return settings
    }

    /// The cluster `buildHub` joins when NATS is configured; nil for a single hub. A node keeps its
    /// state in the shared PostgreSQL (`ClusterSnapshotStore`: the trips it owns).
    func clusterWiring(logger: Logger) -> ClusterWiring? {
        guard let settings = clusterSettings, let databaseURL else { return nil }
        let store = ClusterSnapshotStore(url: databaseURL, nodeID: settings.nodeID)
        return ClusterWiring(
            store: store, joining: ClusterJoin(settings: settings, databaseURL: databaseURL, store: store, logger: logger)
        )
    }
}

/// Joins a hub to the cluster: a node needs the shared PostgreSQL at start, so it migrates the
/// schema and takes its lease before the hub loads the trips the database records as its own.
struct ClusterJoin: ClusterJoining {
    let settings: ClusterSettings
    let databaseURL: String
    let store: any SnapshotStore
    let logger: Logger
    /// Refuses until `join` bound it to the node.
    private let fenced = FencedCommits()

    init(settings: ClusterSettings, databaseURL: String, store: any SnapshotStore, logger: Logger) {
        self.settings = settings
        self.databaseURL = databaseURL
        self.store = store
        self.logger = logger
    }

    var nodeID: String { settings.nodeID }

    var commits: any CommitWriter { fenced }

    func join(_ hub: Hub) async throws -> any ClusterMember {
        try await store.migrate()
        let node = try await ClusterNode.start(settings: settings, hub: hub, databaseURL: databaseURL, store: store, logger: logger)
        fenced.attach(node)
        return node
    }
}
