import Dispatch
import Foundation
import Synchronization

/// A serial executor that runs its jobs on one thread of its own, outside Swift's cooperative
/// pool and the event loops. Database calls block (libpq's network round trips and COPYs,
/// SQLite's file writes), so a `PostgresConnection` and the SQLite store's snapshot writer run on
/// one of these: the threads that carry actors and sockets never wait on the database.
///
/// It is a task executor too: a task that prefers it (`Task(executorPreference:)`) runs its
/// code on the same thread, so a loop that calls an actor on this executor over and over (the
/// journal's group commit) never hops between threads.
///
/// The thread lives until `shutdown()` is called (its owner does it in its `deinit`); jobs
/// already queued still run first.
///
/// A module of its own because it is no one store's: `PostgresClient` runs each connection on
/// one, `Persistence` its SQLite writer and its journal.
public final class ThreadExecutor: SerialExecutor, TaskExecutor {
    private struct State {
        var jobs: [UnownedJob] = []
        var next = 0
        var stopped = false
    }

    private let state = Mutex(State())
    private let thread = Mutex<pthread_t?>(nil)
    /// Counts queued jobs (plus the stop request), so the thread sleeps while there is nothing.
    private let available = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - name: the thread's name; Linux keeps its first 15 bytes.
    ///   - niceness: added to the thread's nice value (Linux schedules threads one by one). Work
    ///     that may wait, like a snapshot write, then yields the cores to the threads that serve
    ///     sockets whenever both want them, and runs in full otherwise.
    public init(name: String, niceness: Int32 = 0) {
        // Named from inside, and within Linux's 15-byte limit: otherwise the name never reaches
        // the system (and tools like top or gdb).
        let shortName = String(decoding: name.utf8.prefix(15), as: UTF8.self)
        Thread { [self] in
            Thread.current.name = shortName
            if niceness > 0 {
                // Best effort; needs no privilege. On Linux the nice value is per thread, and `who` 0
                // names the calling thread only.
                _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
            }
            self.thread.withLock { $0 = pthread_self() }
            self.runLoop()
        }.start()
    }

    /// The kernel id of the executor's thread, once it runs (tests check jobs run there).
    public var threadID: pthread_t? {
        thread.withLock { $0 }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        state.withLock { $0.jobs.append(job) }
        available.signal()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// Lets the thread end once the jobs queued so far have run.
    public func shutdown() {
        state.withLock { $0.stopped = true }
        available.signal()
    }

    private func runLoop() {
        let serial = asUnownedSerialExecutor()
        let tasks = asUnownedTaskExecutor()
        while true {
            available.wait()
            let job: UnownedJob? = state.withLock { state in
                guard state.next < state.jobs.count else { return nil }
                let job = state.jobs[state.next]
                state.next += 1
                // Compact now and then instead of removing from the front each time.
                if state.next >= 64, state.next * 2 >= state.jobs.count {
                    state.jobs.removeFirst(state.next)
                    state.next = 0
                }
                return job
            }
            if let job {
                // Jobs of an actor on this executor and of a task preferring it arrive alike.
                job.runSynchronously(isolatedTo: serial, taskExecutor: tasks)
            } else if state.withLock({ $0.stopped && $0.next >= $0.jobs.count }) {
                return
            }
        }
    }
}
