import Foundation
import Synchronization

/// The seeded, single-threaded scheduler at the heart of the simulation.
///
/// Every piece of simulated concurrency is a *lane*: each trip actor runs on a `SimActorExecutor`
/// (a serial executor) and each simulated client operation runs as a task whose executor
/// preference is a `SimTaskExecutor`. Enqueued jobs go into their lane's FIFO queue, so the jobs
/// of one executor keep their order; the harness thread alone runs jobs, one at a time, and the
/// seed chooses *which lane* runs next: the freedom is the interleaving between actors and tasks,
/// exactly the freedom the real runtime has.
///
/// Jobs must only be enqueued from the harness thread (while it runs a job or between jobs);
/// an enqueue from any other thread would arrive at a moment the seed did not choose, so it is
/// counted (`foreignEnqueues`) and the run reports it as a harness fault.
public final class SimScheduler: Sendable {
    enum LaneExecutor: Sendable {
        case actor(SimActorExecutor)
        case task(SimTaskExecutor)
    }

    private struct Lane {
        let executor: LaneExecutor
        var jobs: [UnownedJob] = []
        var head = 0
        var isEmpty: Bool { head >= jobs.count }
    }

    private struct State {
        var lanes: [Lane] = []
        /// Lanes with at least one job, in a deterministic order.
        var ready: [Int] = []
        var foreignEnqueues = 0
        var jobsRun = 0
        /// Continuations of simulated sleeps, by the step at which they wake.
        var sleepers: [(wake: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())
    private let harnessThread: Mutex<pthread_t?> = Mutex(nil)

    public init() {}

    /// A new serial executor (one per trip actor).
    func makeActorExecutor() -> SimActorExecutor {
        state.withLock { state in
            let executor = SimActorExecutor(scheduler: self, lane: state.lanes.count)
            state.lanes.append(Lane(executor: .actor(executor)))
            return executor
        }
    }

    /// A new task executor (one per simulated operation).
    func makeTaskExecutor() -> SimTaskExecutor {
        state.withLock { state in
            let executor = SimTaskExecutor(scheduler: self, lane: state.lanes.count)
            state.lanes.append(Lane(executor: .task(executor)))
            return executor
        }
    }

    /// Binds the scheduler to the calling thread: only it runs jobs and may enqueue them.
    func bindToCurrentThread() {
        harnessThread.withLock { $0 = pthread_self() }
    }

    func enqueue(_ job: UnownedJob, lane: Int) {
        let foreign = harnessThread.withLock { thread in thread.map { pthread_equal($0, pthread_self()) == 0 } ?? true }
        state.withLock { state in
            if foreign { state.foreignEnqueues += 1 }
            if state.lanes[lane].isEmpty { state.ready.append(lane) }
            state.lanes[lane].jobs.append(job)
        }
    }

    /// Lanes with a job waiting.
    var readyCount: Int { state.withLock { $0.ready.count } }
    var foreignEnqueues: Int { state.withLock { $0.foreignEnqueues } }
    var jobsRun: Int { state.withLock { $0.jobsRun } }

    /// Runs the first job of the `choice % ready`-th ready lane. Returns the lane, or nil when no
    /// job waits.
    @discardableResult
    func runOne(choice: Int) -> Int? {
        let picked: (job: UnownedJob, executor: LaneExecutor, lane: Int)? = state.withLock { state in
            guard !state.ready.isEmpty else { return nil }
            let slot = choice % state.ready.count
            let lane = state.ready[slot]
            let job = state.lanes[lane].jobs[state.lanes[lane].head]
            state.lanes[lane].head += 1
            if state.lanes[lane].isEmpty {
                state.lanes[lane].jobs.removeAll(keepingCapacity: true)
                state.lanes[lane].head = 0
                state.ready.remove(at: slot)
            }
            state.jobsRun += 1
            return (job, state.lanes[lane].executor, lane)
        }
        guard let picked else { return nil }
        switch picked.executor {
        case .actor(let executor): picked.job.runSynchronously(on: executor.asUnownedSerialExecutor())
        case .task(let executor): picked.job.runSynchronously(on: executor.asUnownedTaskExecutor())
        }
        return picked.lane
    }

    /// Suspends the calling simulated task until step `wake` (see `wakeSleepers(at:)`).
    func sleep(until wake: Int) async {
        await withCheckedContinuation { continuation in
            state.withLock { $0.sleepers.append((wake, continuation)) }
        }
    }

    /// Resumes the sleepers due at `step`, in the order they fell asleep.
    func wakeSleepers(at step: Int) {
        let due: [CheckedContinuation<Void, Never>] = state.withLock { state in
            let due = state.sleepers.filter { $0.wake <= step }.map(\.continuation)
            state.sleepers.removeAll { $0.wake <= step }
            return due
        }
        for continuation in due { continuation.resume() }
    }

    /// Resumes every sleeper, due or not (a crashed hub's, so that its tasks can end).
    func wakeAllSleepers() {
        wakeSleepers(at: .max)
    }
}

/// The serial executor of one simulated trip actor: its jobs wait in its lane of the scheduler.
public final class SimActorExecutor: SerialExecutor {
    private let scheduler: SimScheduler
    private let lane: Int

    init(scheduler: SimScheduler, lane: Int) {
        self.scheduler = scheduler
        self.lane = lane
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        scheduler.enqueue(UnownedJob(job), lane: lane)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}

/// The task executor of one simulated operation (a client's request, a snapshot): the
/// operation's nonisolated code runs as jobs in its lane of the scheduler, never on the global pool.
public final class SimTaskExecutor: TaskExecutor {
    private let scheduler: SimScheduler
    private let lane: Int

    init(scheduler: SimScheduler, lane: Int) {
        self.scheduler = scheduler
        self.lane = lane
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        scheduler.enqueue(UnownedJob(job), lane: lane)
    }
}
