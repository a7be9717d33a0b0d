import Testing

/// Lets `swift test` run once without starving anything: the suites that load the machine (three
/// hub processes, two minutes of simulation, the load generator) or time real sockets are
/// `exclusive` and run alone, one at a time; every other suite is `shared` and runs beside the
/// other shared ones, as Swift Testing's parallelism would run them. Waiters are served in the
/// order they came, so an exclusive suite is not starved by a stream of shared ones.
///
/// Suites of all test targets run in one process, so one gate serves them all. Every suite
/// carries one of the two (a suite without either would run beside an exclusive one).
public struct MachineLoad: SuiteTrait, TestScoping {
    enum Mode: Sendable {
        case shared
        case exclusive
    }

    let mode: Mode

    /// Puts the machine under load, or needs it quiet: runs alone.
    public static let exclusive = MachineLoad(mode: .exclusive)
    /// An ordinary suite: runs beside other ordinary suites, never beside an exclusive one.
    public static let shared = MachineLoad(mode: .shared)

    public var isRecursive: Bool { false }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> MachineLoad? {
        // The whole suite holds the gate once, not each of its tests.
        test.isSuite ? self : nil
    }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        await MachineGate.shared.enter(mode)
        do {
            try await function()
        } catch {
            await MachineGate.shared.leave(mode)
            throw error
        }
        await MachineGate.shared.leave(mode)
    }
}

/// A readers-writer lock for whole suites, first come first served.
actor MachineGate {
    static let shared = MachineGate()

    private var sharedHolders = 0
    private var exclusiveHeld = false
    private var waiting: [(mode: MachineLoad.Mode, continuation: CheckedContinuation<Void, Never>)] = []

    func enter(_ mode: MachineLoad.Mode) async {
        if waiting.isEmpty, admits(mode) {
            take(mode)
            return
        }
        await withCheckedContinuation { waiting.append((mode, $0)) }
    }

    func leave(_ mode: MachineLoad.Mode) {
        switch mode {
        case .shared: sharedHolders -= 1
        case .exclusive: exclusiveHeld = false
        }
        while let next = waiting.first, admits(next.mode) {
            waiting.removeFirst()
            take(next.mode)
            next.continuation.resume()
        }
    }

    private func admits(_ mode: MachineLoad.Mode) -> Bool {
        switch mode {
        case .shared: !exclusiveHeld
        case .exclusive: !exclusiveHeld && sharedHolders == 0
        }
    }

    private func take(_ mode: MachineLoad.Mode) {
        switch mode {
        case .shared: sharedHolders += 1
        case .exclusive: exclusiveHeld = true
        }
    }
}
