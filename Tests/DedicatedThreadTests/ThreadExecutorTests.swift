import DedicatedThread
import Foundation
import Synchronization
import Testing
import TestSupport

/// An actor whose jobs run on a given `ThreadExecutor`.
private actor Counter {
    nonisolated let executor: ThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private(set) var values: [Int] = []
    private(set) var threads: Set<UInt> = []

    init(on executor: ThreadExecutor) {
        self.executor = executor
    }

    func append(_ value: Int) {
        values.append(value)
        threads.insert(UInt(pthread_self()))
    }
}

/// What ran where, recorded from any thread.
private final class Runs: Sendable {
    private let runs = Mutex<[(value: Int, thread: UInt)]>([])

    func record(_ value: Int) { runs.withLock { $0.append((value, UInt(pthread_self()))) } }

    var all: [(value: Int, thread: UInt)] { runs.withLock { $0 } }
}

@Suite("ThreadExecutor: one thread of its own for blocking work", MachineLoad.shared, .timeLimit(.minutes(1)))
struct ThreadExecutorTests {
    @Test("an actor on it runs every call on the executor's thread, none lost, each caller's calls in order")
    func actorJobsRunOnItsThread() async throws {
        let executor = ThreadExecutor(name: "test-actor")
        defer { executor.shutdown() }
        let counter = Counter(on: executor)
        let callers = 32, callsEach = 200
        await withTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    for call in 0..<callsEach { await counter.append(caller * callsEach + call) }
                }
            }
        }
        let values = await counter.values
        #expect(values.count == callers * callsEach)
        #expect(Set(values).count == callers * callsEach)
        for caller in 0..<callers {
            let mine = values.filter { $0 / callsEach == caller }
            #expect(mine == mine.sorted(), "caller \(caller)'s calls ran out of order")
        }
        let thread = try #require(executor.threadID)
        #expect(await counter.threads == [UInt(thread)])
    }

    @Test("a task that prefers it runs on its thread, also after awaiting an actor elsewhere")
    func taskPreferenceRunsThere() async throws {
        let executor = ThreadExecutor(name: "test-tasks")
        defer { executor.shutdown() }
        let elsewhere = ThreadExecutor(name: "test-other")
        defer { elsewhere.shutdown() }
        let other = Counter(on: elsewhere)
        let threads = await Task(executorPreference: executor) { () -> [UInt] in
            var seen = [UInt(pthread_self())]
            await other.append(1)
            seen.append(UInt(pthread_self()))
            return seen
        }.value
        let thread = try #require(executor.threadID)
        #expect(threads == [UInt(thread), UInt(thread)])
        let otherThread = try #require(elsewhere.threadID)
        #expect(await other.threads == [UInt(otherThread)])
        #expect(thread != otherThread)
    }

    @Test("shutdown lets the jobs queued before it run first, on its thread, in order")
    func shutdownDrainsQueuedJobs() async throws {
        let executor = ThreadExecutor(name: "test-drain")
        let ran = Runs()
        // Each task's first job is queued on the executor as the task is made, before `shutdown`.
        let tasks = (0..<100).map { value in
            Task(executorPreference: executor) { ran.record(value) }
        }
        executor.shutdown()
        for task in tasks { await task.value }
        let thread = try #require(executor.threadID)
        let runs = ran.all
        #expect(runs.map(\.value) == Array(0..<100))
        #expect(Set(runs.map(\.thread)) == [UInt(thread)])
    }
}
