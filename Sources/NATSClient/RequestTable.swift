import Synchronization

/// The requests of one connection waiting for their replies.
///
/// Every request gets a token; its reply subject is the connection's inbox prefix followed by
/// the token, and one wildcard subscription on `prefix.*` receives all replies. A reply, a
/// "no responders" status, the time-out, the caller's cancellation or the connection's close
/// resolves a request; whichever comes first wins and the rest find nothing to resolve.
final class RequestTable: Sendable {
    typealias Outcome = Result<NATSMessage, NATSError>

    private struct Waiter {
        let continuation: CheckedContinuation<Outcome, Never>
        var timer: Task<Void, Never>?
    }

    private struct State {
        var waiting: [UInt64: Waiter] = [:]
        var closed = false
    }

    /// `_INBOX.<22 random characters>.`
    let prefix: String
    private let state = Mutex(State())
    private let nextToken = Atomic<UInt64>(1)

    init() {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        var generator = SystemRandomNumberGenerator()
        prefix = "_INBOX." + String((0..<22).map { _ in alphabet.randomElement(using: &generator)! }) + "."
    }

    var wildcardSubject: String { prefix + "*" }

    func replySubject(for token: UInt64) -> String {
        prefix + String(token, radix: 36)
    }

    /// A fresh token for a request.
    func newToken() -> UInt64 {
        nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Registers a waiting request; false when the connection is closed.
    func register(_ token: UInt64, _ continuation: CheckedContinuation<Outcome, Never>) -> Bool {
        state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.waiting[token] = Waiter(continuation: continuation, timer: nil)
            return true
        }
    }

    /// Attaches the time-out task to a request, or cancels it when the request is already resolved.
    func setTimer(_ timer: Task<Void, Never>, for token: UInt64) {
        let resolved = state.withLock { state -> Bool in
            guard state.waiting[token] != nil else { return true }
            state.waiting[token]?.timer = timer
            return false
        }
        if resolved { timer.cancel() }
    }

    /// Resolves the request with `token`, if it still waits.
    func resolve(token: UInt64, with outcome: Outcome) {
        guard let waiter = state.withLock({ $0.waiting.removeValue(forKey: token) }) else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(returning: outcome)
    }

    /// Resolves the request a message on `subject` (an inbox subject) answers.
    func resolve(subject: String, with outcome: Outcome) {
        let utf8 = subject.utf8
        guard utf8.count > prefix.utf8.count,
            let token = UInt64(Substring(subject.utf8.dropFirst(prefix.utf8.count)), radix: 36)
        else { return }
        resolve(token: token, with: outcome)
    }

    /// Fails every waiting request, and every later one, with `.closed`.
    func close() {
        let waiters = state.withLock { state -> [Waiter] in
            state.closed = true
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .failure(.closed))
        }
    }
}
