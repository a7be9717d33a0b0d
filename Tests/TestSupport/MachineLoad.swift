import Testing

/// Keeps the suites that load the machine (three hub processes, two minutes of simulation, the
/// load generator) and the suites that time real sockets from running at the same moment, so
/// `swift test` runs once and nothing starves: a suite with this trait waits until no other suite
/// with it runs. Every other suite runs in parallel as usual.
///
/// Suites of all test targets run in one process, so one gate serves them all.
public struct MachineLoad: SuiteTrait, TestScoping {
    /// Puts the machine under load, or needs it quiet: either way, one such suite at a time.
    public static let exclusive = MachineLoad()

    public var isRecursive: Bool { false }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> MachineLoad? {
        // The whole suite holds the gate once, not each of its tests.
        test.isSuite ? self : nil
    }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        await MachineGate.shared.enter()
        do {
            try await function()
        } catch {
            await MachineGate.shared.leave()
            throw error
        }
        await MachineGate.shared.leave()
    }
}

/// A first-come, first-served lock for whole suites.
actor MachineGate {
    static let shared = MachineGate()

    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func enter() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        guard !waiting.isEmpty else {
            held = false
            return
        }
        waiting.removeFirst().resume()
    }
}
