import Dispatch
import Synchronization

/// Runs real I/O (the SQLite store's own threads) to its end while the harness thread waits.
///
/// Inside the simulation an `await` on the store would resume from the store's thread at a moment
/// no seed chose. Instead the calling job blocks the harness thread (a thread of its own, never a
/// cooperative one) until the work, run in a detached task *outside* the simulated world, is
/// done: to the simulation, store I/O takes no time and happens inside one step.
enum BlockingBridge {
    static func run<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
        let outcome = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let result: Result<T, any Error>
            do { result = .success(try await work()) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return try outcome.withLock { $0! }.get()
    }
}
