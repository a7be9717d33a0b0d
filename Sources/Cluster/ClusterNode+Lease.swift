import Foundation
import Hub
import Synchronization

/// A node's lease as the node itself keeps it: a local deadline on the monotonic clock that
/// always ends before the lease in PostgreSQL can, and the fenced commits that may only happen
/// before it.
///
/// The lease in PostgreSQL ends at `now() + lease`, read on the database's clock when a renewal
/// runs there, which is after the node sent it. The node counts from when it sent the renewal,
/// on its own monotonic clock (which wall-clock steps do not move), and keeps a margin for the
/// two clocks running at slightly different rates: so its local deadline passes before any
/// other node can see the lease as expired and take the trips over. When it passes (renewals
/// failing, hanging, or the process paused), the node stops at once: it refuses nothing
/// more, answers nothing more, sends no events; a supervisor starts it again as a new
/// incarnation, which registers a fresh lease.
extension ClusterNode {
    /// The part of a lease a node does not count on: a tenth of it, at least 250 ms.
    static func margin(of lease: Duration) -> Duration {
        max(lease / 10, .milliseconds(250))
    }

    /// A renewal sent at `sentAt` succeeded: the node may act as owner until `sentAt + lease - margin`.
    func extendLocalLease(sentAt: ContinuousClock.Instant) {
        let end = sentAt + settings.lease - Self.margin(of: settings.lease)
        localLeaseEnd.withLock { $0 = max($0, end) }
    }

    /// How long this node may still act as owner; zero or less once its local deadline passed.
    var localLeaseRemaining: Duration {
        localLeaseEnd.withLock { $0 } - .now
    }

    /// Stops the process the moment the local deadline passes, checked every 20 ms (and first
    /// thing after the process was paused and resumed).
    func guardLocalLease() async {
        while !Task.isCancelled {
            if localLeaseRemaining <= .zero { localLeaseExpired() }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func localLeaseExpired() -> Never {
        logger.critical(
            "this node's lease passed its local deadline without a renewal; stopping before another node can take its trips over"
        )
        exit(ProcessExit.leaseLost)
    }

    /// Makes trip changes durable in PostgreSQL under this node's lease (`PostgresClusterStore.commit`),
    /// within what is left of the local lease: a commit that would end after it, or that the
    /// database refuses, fails, and the hub stops (see `CommitLog`).
    public func commit(_ batch: [DurableChange]) async throws {
        let remaining = localLeaseRemaining
        guard remaining > .zero else { throw PostgresClusterStore.LeaseLost(nodeID: settings.nodeID) }
        try await withDeadline(remaining, "a fenced commit") { [leases] in
            try await leases.commit(batch)
        }
    }
}

/// The cluster's side of a hub's commit log (`ClusterJoining.commits`): built before the node
/// joins (the hub needs its log first), bound to the node once it has.
public final class FencedCommits: CommitWriter {
    private let node = Mutex<ClusterNode?>(nil)

    public init() {}

    public func attach(_ node: ClusterNode) {
        self.node.withLock { $0 = node }
    }

    public func commit(_ batch: [DurableChange]) async throws {
        guard let node = node.withLock({ $0 }) else {
            throw PostgresClusterStore.LeaseLost(nodeID: "(not joined yet)")
        }
        try await node.commit(batch)
    }
}
