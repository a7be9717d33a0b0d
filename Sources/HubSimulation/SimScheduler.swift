import Foundation
import Synchronization

/// The seeded, single-threaded scheduler at the heart of the simulation.
///
/// Every piece of simulated concurrency is a *lane* with a `SimLaneExecutor` of its own: each trip
/// actor runs on one (as its serial executor) and each simulated client operation runs as a task
/// whose executor preference is one (as a task executor). Enqueued jobs go into their lane's FIFO queue, so the jobs
/// of one executor keep their order; the harness thread alone runs jobs, one at a time, and the
/// seed chooses *which lane* runs next: the freedom is the interleaving between actors and tasks,
/// exactly the freedom the real runtime has.
///
/// Jobs must only be enqueued from the harness thread (while it runs a job or between jobs);
/// an enqueue from any other thread would arrive at a moment the seed did not choose, so it is
/// counted (`foreignEnqueues`) and the run reports it as a harness fault.
public final class SimScheduler: Sendable {
    /// What waits in a lane: a Swift job, or a plain job (`SimJobQueue`) run on the lane as if it
    /// were one of the lane actor's jobs.
    private enum Item {
        case job(UnownedJob)
        case plain(@Sendable () -> Void)
    }

    private struct Lane {
        let executor: SimLaneExecutor
        var jobs: [Item] = []
        var head = 0
        var isEmpty: Bool { head >= jobs.count }
    }

    private struct State {
        var lanes: [Lane] = []
        /// Lanes with at least one job, in a deterministic order.
        var ready: [Int] = []
        var foreignEnqueues = 0
        var jobsRun = 0
        /// The lane whose job runs right now, if any.
        var running: Int?
        /// Continuations of simulated sleeps, by the step at which they wake.
        var sleepers: [(wake: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())
    private let harnessThread: Mutex<pthread_t?> = Mutex(nil)

    public init() {}

    /// A new serial executor (one per trip actor).
    func makeActorExecutor() -> SimLaneExecutor {
        makeLane(.actor)
    }

    /// A new task executor (one per simulated operation).
    func makeTaskExecutor() -> SimLaneExecutor {
        makeLane(.task)
    }

    private func makeLane(_ role: SimLaneExecutor.Role) -> SimLaneExecutor {
        state.withLock { state in
            let executor = SimLaneExecutor(scheduler: self, lane: state.lanes.count, role: role)
            state.lanes.append(Lane(executor: executor))
            return executor
        }
    }

    /// Binds the scheduler to the calling thread: only it runs jobs and may enqueue them.
    func bindToCurrentThread() {
        harnessThread.withLock { $0 = pthread_self() }
    }

    func enqueue(_ job: UnownedJob, lane: Int) {
        enqueue(.job(job), lane: lane)
    }

    /// Queues a plain job on `lane`, behind the Swift jobs enqueued there before it.
    func enqueue(plain job: @escaping @Sendable () -> Void, lane: Int) {
        enqueue(.plain(job), lane: lane)
    }

    private func enqueue(_ item: Item, lane: Int) {
        let foreign = harnessThread.withLock { thread in thread.map { pthread_equal($0, pthread_self()) == 0 } ?? true }
        state.withLock { state in
            if foreign { state.foreignEnqueues += 1 }
            if state.lanes[lane].isEmpty { state.ready.append(lane) }
            state.lanes[lane].jobs.append(item)
        }
    }

    /// True while a job of `lane` runs.
    func isRunning(lane: Int) -> Bool {
        state.withLock { $0.running == lane }
    }

    /// Lanes with a job waiting.
    var readyCount: Int { state.withLock { $0.ready.count } }
    var foreignEnqueues: Int { state.withLock { $0.foreignEnqueues } }
    var jobsRun: Int { state.withLock { $0.jobsRun } }

    /// Runs the first job of the `choice % ready`-th ready lane. Returns the lane, or nil when no
    /// job waits.
    @discardableResult
    func runOne(choice: Int) -> Int? {
        let picked: (job: Item, executor: SimLaneExecutor, lane: Int)? = state.withLock { state in
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
            state.running = lane
            return (job, state.lanes[lane].executor, lane)
        }
        guard let picked else { return nil }
        defer { state.withLock { $0.running = nil } }
        switch (picked.job, picked.executor.role) {
        case (.plain(let job), _): job()
        case (.job(let job), .actor): job.runSynchronously(on: picked.executor.asUnownedSerialExecutor())
        case (.job(let job), .task): job.runSynchronously(on: picked.executor.asUnownedTaskExecutor())
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

/// The executor of one lane: its jobs wait in that lane of the scheduler, never on the global pool.
/// A trip actor's lane uses it as the actor's serial executor; a simulated operation's lane (a
/// client's request, a snapshot) as its task's executor preference, so the operation's
/// nonisolated code runs there too.
public final class SimLaneExecutor: SerialExecutor, TaskExecutor {
    enum Role: Sendable {
        case actor
        case task
    }

    private let scheduler: SimScheduler
    private let lane: Int
    let role: Role

    init(scheduler: SimScheduler, lane: Int, role: Role) {
        self.scheduler = scheduler
        self.lane = lane
        self.role = role
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        scheduler.enqueue(UnownedJob(job), lane: lane)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// A plain job of this lane (`SimJobQueue`) runs isolated to the lane's actor: the harness
    /// runs one job at a time, and this lane's only while it is picked.
    public func checkIsolated() {
        precondition(scheduler.isRunning(lane: lane), "not on the simulated lane \(lane)")
    }

    var isRunning: Bool { scheduler.isRunning(lane: lane) }

    func enqueue(plain job: @escaping @Sendable () -> Void) {
        scheduler.enqueue(plain: job, lane: lane)
    }
}
