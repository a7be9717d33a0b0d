import Foundation
import HummingbirdBcrypt
import NIOCore
import NIOPosix
import Synchronization

/// Hashes and checks passwords with bcrypt, which by design takes a quarter-second of a core
/// (cost 12 here), on threads of its own at a lowered priority, with a bound on how many may wait.
///
/// The threads run at nice +10: Linux then gives the event loops that carry GPS fixes the cores
/// whenever both want them, so a flood of log-ins slows log-ins, not locations. A hash asked for
/// while `maxWaiting` are already queued or running is refused at once with `Busy` (the routes
/// answer `503` with `Retry-After`) rather than queued for seconds.
struct PasswordHasher: Sendable {
    /// Too many hashes are waiting; nothing was checked.
    struct Busy: Error {}

    let cost: UInt8
    /// Hashes queued or running at once before more are refused.
    let maxWaiting: Int
    private let occupancy = Occupancy()

    init(cost: UInt8, maxWaiting: Int = 16) {
        self.cost = cost
        self.maxWaiting = maxWaiting
    }

    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await run { Bcrypt.hash(password, cost: cost) }
    }

    /// Whether `password` matches `hash`; throws `Busy` instead of waiting behind a flood.
    func verify(_ password: String, against hash: String) async throws -> Bool {
        try await run { Bcrypt.verify(password, hash: hash) }
    }

    /// Runs `work` on a hashing thread, or throws `Busy` (internal for the tests of the threads).
    func run<Value: Sendable>(_ work: @escaping @Sendable () -> Value) async throws -> Value {
        let waiting = occupancy.count.wrappingAdd(1, ordering: .relaxed).newValue
        defer { occupancy.count.wrappingSubtract(1, ordering: .relaxed) }
        guard waiting <= maxWaiting else { throw Busy() }
        return try await Self.threads.runIfActive {
            Self.lowerPriority()
            return work()
        }
    }

    /// One thread per core, shared by every hasher of the process, started on first use.
    private static let threads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: System.coreCount)
        pool.start()
        return pool
    }()

    /// Nice value of the hashing threads.
    static let niceness: Int32 = 10

    /// Sets the calling thread's nice value (Linux keeps one per thread; `who` 0 is this thread).
    /// Lowering needs no privilege; repeating it costs a system call, nothing next to bcrypt.
    private static func lowerPriority() {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
    }

    /// The shared count of hashes queued or running for one hasher and its copies.
    private final class Occupancy: Sendable {
        let count = Atomic<Int>(0)
    }
}
