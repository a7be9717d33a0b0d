import Testing

@testable import Cluster
import TestSupport

@Suite("Retired owners: a run that was taken over answers nothing a requester believes", MachineLoad.shared)
struct RetiredOwnersTests {
    @Test("only the run taken over is retired, not the node's later runs")
    func retiresOneRun() {
        let retired = RetiredOwners()
        retired.retire(node: "node-a", incarnation: 7)
        #expect(retired.isRetired(node: "node-a", incarnation: 7))
        #expect(!retired.isRetired(node: "node-a", incarnation: 8))
        #expect(!retired.isRetired(node: "node-b", incarnation: 7))
    }

    @Test("bounded: the oldest runs are forgotten first, a repeated notice counts once")
    func bounded() {
        let retired = RetiredOwners(capacity: 3)
        for incarnation in 1...3 { retired.retire(node: "n", incarnation: UInt64(incarnation)) }
        retired.retire(node: "n", incarnation: 3)
        retired.retire(node: "n", incarnation: 4)
        #expect(!retired.isRetired(node: "n", incarnation: 1))
        #expect((2...4).allSatisfy { retired.isRetired(node: "n", incarnation: UInt64($0)) })
    }
}
