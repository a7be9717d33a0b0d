import Synchronization

/// A change that must be durable before anyone hears of it: a trip's new state (creation, accept,
/// each status change, cancel) or a new account. GPS fixes and driver positions are not: they
/// go to the store in periodic snapshots (`ChangeTracker`).
public enum DurableChange: Sendable, Hashable, Codable {
    case trip(Trip)
    case user(User)
}

/// A place in a commit log: every change appended gets the next one.
public typealias CommitPosition = UInt64

/// Makes trip changes and sign-ups durable before they are acknowledged.
///
/// The hub appends a change synchronously, as part of making it (inside the trip's actor, so
/// the log's order is each trip's order), and gets its position. Nothing that reveals the
/// change (an event, a reply) leaves the hub until the log says that position is durable.
/// Implementations group commits: every change appended while one commit runs shares the next.
///
/// When a commit fails for good (the journal cannot be written, or a cluster node lost its
/// lease), `whenDurable` hands its callers an `unavailable` error and the hub must stop acting
/// on the changes it holds in memory: the process ends (see `CommitFailure`).
public protocol CommitLog: Sendable {
    /// Queues `change` for the next commit and returns its position. Never blocks or suspends.
    func append(_ change: DurableChange) -> CommitPosition

    /// True when every change up to `position` is durable. Cheap: an atomic read.
    func isDurable(_ position: CommitPosition) -> Bool

    /// Calls `done` once every change up to `position` is durable (nil), or with the error that
    /// ended the log. At once when `position` is durable already. `done` may run on any thread.
    func whenDurable(_ position: CommitPosition, _ done: @escaping @Sendable (HubError?) -> Void)
}

extension CommitLog {
    /// Waits until every change up to `position` is durable; throws `unavailable` when the log
    /// failed before it was.
    public func waitUntilDurable(_ position: CommitPosition) async throws(HubError) {
        guard !isDurable(position) else { return }
        let failure: HubError? = await withCheckedContinuation { continuation in
            whenDurable(position) { continuation.resume(returning: $0) }
        }
        if let failure { throw failure }
    }
}

/// The error every waiter gets once a commit log failed for good.
public enum CommitFailure {
    public static func unavailable(_ reason: String) -> HubError {
        HubError(.unavailable, "The change could not be made durable (\(reason)); it may not have happened. Retry, or resume to learn the trip's state.")
    }
}

/// A log whose every change is durable the moment it is appended: for hubs that keep nothing
/// (benchmarks of the hub alone, tests of the rules). Positions still grow, so callers behave
/// exactly as with a real log.
public final class ImmediateCommitLog: CommitLog {
    private let next = Atomic<UInt64>(0)

    public init() {}

    public func append(_ change: DurableChange) -> CommitPosition {
        next.add(1, ordering: .relaxed).newValue
    }

    public func isDurable(_ position: CommitPosition) -> Bool { true }

    public func whenDurable(_ position: CommitPosition, _ done: @escaping @Sendable (HubError?) -> Void) {
        done(nil)
    }
}
