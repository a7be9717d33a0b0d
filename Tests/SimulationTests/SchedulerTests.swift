@testable import HubSimulation
import Synchronization
import Testing
import TestSupport

/// The simulator's scheduler itself: the seed chooses the interleaving between executors, and
/// the jobs of one serial executor always run in the order they were enqueued.
@Suite("Simulation scheduler", MachineLoad.shared)
struct SchedulerTests {
    /// An actor on a simulated serial executor that records the order it runs calls in.
    actor Recorder {
        let executor: SimLaneExecutor
        let ran: Mutex<[Int]>

        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

        init(executor: SimLaneExecutor) {
            self.executor = executor
            self.ran = Mutex([])
        }

        func record(_ value: Int) {
            ran.withLock { $0.append(value) }
        }
    }

    /// Runs 12 tasks that each call one of two actors twice, under `seed`; returns the order the
    /// calls reached each actor's queue and the order each actor ran them, per actor.
    static func run(seed: UInt64) -> (arrived: [[Int]], ran: [[Int]]) {
        let scheduler = SimScheduler()
        scheduler.bindToCurrentThread()
        let recorders = [Recorder(executor: scheduler.makeActorExecutor()), Recorder(executor: scheduler.makeActorExecutor())]
        let arrived = ArrivalLog()
        for task in 0..<12 {
            let recorder = recorders[task % 2]
            Task(executorPreference: scheduler.makeTaskExecutor()) {
                for call in 0..<2 {
                    let value = task * 10 + call
                    // Recorded in the same job that then enqueues the call on the actor's executor.
                    arrived.orders.withLock { $0[task % 2].append(value) }
                    await recorder.record(value)
                }
            }
        }
        var random = SimRandom(seed: seed)
        while scheduler.runOne(choice: random.index(1 << 30)) != nil {}
        #expect(scheduler.foreignEnqueues == 0)
        return (arrived.orders.withLock { $0 }, recorders.map { recorder in recorder.ran.withLock { $0 } })
    }

    /// The order calls reached each actor's queue.
    final class ArrivalLog: Sendable {
        let orders = Mutex<[[Int]]>([[], []])
    }

    @Test("Jobs of one serial executor keep their order; the seed varies the interleaving")
    func fifoPerExecutor() {
        var orders: Set<[[Int]]> = []
        for seed: UInt64 in 1...20 {
            let (arrived, ran) = Self.run(seed: seed)
            #expect(ran == arrived, "seed \(seed)")
            #expect(ran.map(\.count) == [12, 12])
            orders.insert(ran)
            #expect(Self.run(seed: seed).ran == ran, "seed \(seed) replays")
        }
        #expect(orders.count > 10)
    }
}
