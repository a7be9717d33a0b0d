import Foundation
import HummingbirdBcrypt
import NIOCore
import NIOPosix
import Synchronization

/// Hashes and checks passwords with bcrypt, which by design takes a quarter-second of a core
/// (cost 12 here), on threads of its own at a lowered priority, with a bound on how many may wait.
///
/// The threads are in Linux's `SCHED_IDLE` class: they get only the cycles the event loops that
/// carry GPS fixes leave, so a flood of log-ins slows log-ins, not locations (nice +10 was not
/// enough: 50 log-ins/s at cost 12 took location p99 from 25 to 135 ms; `SCHED_IDLE`, from 6–8
/// to 13–16 ms; docs/benchmarks-history.md, "Log-ins under load"). A hash asked for
/// while `maxWaiting` are already queued or running is refused at once with `Busy` (the routes
/// answer `503` with `Retry-After`) rather than queued for seconds.
struct PasswordHasher: Sendable {
    /// Too many hashes are waiting; nothing was checked.
    struct Busy: Error {}

    /// Which threads hash: the idle-class ones (the default), or NIO's shared pool at normal
    /// priority for hubs that would rather have quick log-ins than the quietest GPS on a full
    /// machine (and for test processes that run many hubs next to CPU-bound suites).
    enum ThreadClass: String, Sendable, CaseIterable {
        case idle, normal
    }

    let cost: UInt8
    /// Hashes queued or running at once before more are refused.
    let maxWaiting: Int
    let threadClass: ThreadClass
    private let occupancy = Occupancy()

    init(cost: UInt8, maxWaiting: Int = 16, threadClass: ThreadClass = .idle) {
        self.cost = cost
        self.maxWaiting = maxWaiting
        self.threadClass = threadClass
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
        switch threadClass {
        case .idle:
            return try await Self.idleThreads.runIfActive {
                Self.lowerPriority()
                return work()
            }
        case .normal:
            return try await NIOThreadPool.singleton.runIfActive(work)
        }
    }

    /// One thread per core, shared by every hasher of the process, started on first use.
    private static let idleThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: System.coreCount)
        pool.start()
        return pool
    }()

    /// Puts the calling thread in Linux's `SCHED_IDLE` class (per thread; pid 0 is this thread):
    /// it runs only on cycles no normal thread wants, and a waking event loop takes the core
    /// from it at once. Unprivileged threads may enter it. Repeating it costs a system call,
    /// nothing next to bcrypt.
    private static func lowerPriority() {
        var parameters = sched_param()
        _ = sched_setscheduler(0, schedIdle, &parameters)
    }

    /// `SCHED_IDLE` from <linux/sched.h>; Glibc shows it to C only under `_GNU_SOURCE`.
    static let schedIdle: Int32 = 5

    /// The shared count of hashes queued or running for one hasher and its copies.
    private final class Occupancy: Sendable {
        let count = Atomic<Int>(0)
    }
}
