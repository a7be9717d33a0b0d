import Foundation
@_spi(Simulation) import Hub
@_spi(Simulation) import HubSimulation
import Testing
import TestSupport

/// Dispatch under the simulator (docs/simulation.md): its workload has offers that expire,
/// declines, drivers going offline and online and going stale, and dispatch ticks; its invariants
/// hold that no offer outlives its trip's wait, none goes to a busy, offline or stale driver, and
/// every request ends within its `dispatchTimeout`.
@Suite("Simulation: dispatch", MachineLoad.exclusive)
struct DispatchSimulationTests {
    @Test("A planted bug in the offer logic (offers outlive their trip) is found within 20 seeds")
    func findsOffersOutlivingTheirTrip() async throws {
        var options = SimulationTests.options()
        options.plantedBug = .offersOutliveTheirTrip
        let failure = try #require(await SimulationTests.firstFailure(options: options))
        print("planted offer bug found: \(failure)")
        #expect(failure.message.contains("still holds an offer of"), "\(failure)")
        await SimulationTests.expectPasses(seed: failure.seed, options: SimulationTests.options())
    }

    @Test("Seeded runs exercise the dispatch workload: declines of offers that ended meanwhile, pick-ups refused too far away")
    func workloadReachesDispatch() async {
        let summary = await SimulationTests.runAll(Simulator.seeds(from: 1, count: 10))
        for failure in summary.failures { Issue.record("\(failure)") }
        #expect(summary.refusals["no_offer", default: 0] > 0, "declines of offers that had ended")
        #expect(summary.refusals["too_far_from_pickup", default: 0] > 0)
    }
}
