import Hub
import Hummingbird
import Persistence

/// `/healthz` (the process answers), `/readyz` (the store keeps up) and `/metrics`.
struct HealthController: Sendable {
    let hub: Hub
    /// The cluster this hub is a node of; nil for a single hub.
    let cluster: (any ClusterReporting)?
    let startup: HubStartup
    let snapshot: SnapshotStatus
    let metrics: HubMetrics
    let connections: ConnectionRegistry
    /// Snapshot lag beyond which the hub reports itself not ready.
    let maxSnapshotLag: Double

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/healthz") { _, _ in JSONResponse.make(["status": "ok"]) }
        router.get("/readyz") { _, _ in readiness() }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string: metrics.render(hub: hub, snapshot: snapshot, connections: connections) + (cluster?.prometheusText() ?? "")
                    )
                )
            )
        }
    }

    private func readiness() -> Response {
        if case .loading(let attempts, let lastError) = startup.current {
            var body = ["status": "loading", "reason": "loading state from the store", "attempts": String(attempts)]
            body["last_error"] = lastError
            return JSONResponse.make(status: .serviceUnavailable, body)
        }
        let current = snapshot.current
        let lag = snapshot.lagSeconds(now: .now())
        var body: [String: String] = [
            "snapshot_lag_seconds": String(format: "%.3f", lag),
            "pending_changes": String(hub.changes.pendingCount),
        ]
        if let error = current.lastError, current.consecutiveFailures > 0 {
            body["last_error"] = error
        }
        guard current.consecutiveFailures == 0 || lag <= maxSnapshotLag else {
            body["status"] = "unavailable"
            body["reason"] = "snapshots have failed \(current.consecutiveFailures) times in a row"
            return JSONResponse.make(status: .serviceUnavailable, body)
        }
        body["status"] = "ready"
        if let cluster {
            // A node cut off from the cluster still serves its own clients: ready, but degraded.
            let health = cluster.health
            body["cluster_node"] = health.nodeID
            body["cluster_nats"] = health.natsConnected ? "connected" : "disconnected"
            body["cluster_lease"] = health.leaseRenewed ? "held" : "not renewed"
            if health.isDegraded {
                body["status"] = "degraded"
                body["reason"] = health.natsConnected ? "cannot renew the cluster lease: \(health.lastLeaseError ?? "-")" : "NATS is not reachable"
            }
        }
        return JSONResponse.make(body)
    }
}
