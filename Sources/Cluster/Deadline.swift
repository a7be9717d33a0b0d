import Synchronization

/// The call took longer than its deadline.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let what: String
    public let limit: Duration
    public var description: String { "\(what) took longer than \(limit)" }
}

/// Runs `body`, but gives up after `limit`: the caller gets `DeadlineExceeded` at once, while
/// `body` may still be blocked (a database call over a link that lost its packets). Unlike a task
/// group, this does not wait for `body` to end, which is the point: a node must not hang behind
/// a link that never answers.
func withDeadline<T: Sendable>(
    _ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let outcome = FirstOutcome()
    return try await withCheckedThrowingContinuation { continuation in
        let worker = Task {
            let result = await Result(catching: body)
            if outcome.claim() { continuation.resume(with: result) }
        }
        Task {
            try? await Task.sleep(for: limit)
            guard outcome.claim() else { return }
            worker.cancel()
            continuation.resume(throwing: DeadlineExceeded(what: what, limit: limit))
        }
    }
}

/// Lets exactly one of two racing tasks resume a continuation.
private final class FirstOutcome: Sendable {
    private let claimed = Atomic(false)

    /// True for the first caller only.
    func claim() -> Bool {
        !claimed.exchange(true, ordering: .acquiringAndReleasing)
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
