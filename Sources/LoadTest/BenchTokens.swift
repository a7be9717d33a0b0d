import Synchronization

/// The simulated users' access tokens, by connection index (drivers, then riders), renewed
/// through `/bench/users` (same prefixes, so the same users) when the hub refuses one with 401:
/// it expired, or the restarted hub signs with another secret. Many sockets refused at once
/// share one renewal.
final class BenchTokens: Sendable {
    private struct State {
        var tokens: [String]
        /// Counts renewals; a caller names the one its refused token came from.
        var generation = 0
        var renewal: Task<Void, Never>?
    }

    private let state: Mutex<State>
    private let endpoint: HubEndpoint
    private let settings: LoadTestSettings

    init(tokens: [String], endpoint: HubEndpoint, settings: LoadTestSettings) {
        state = Mutex(State(tokens: tokens))
        self.endpoint = endpoint
        self.settings = settings
    }

    /// The token of connection `index`, and the generation it belongs to.
    func token(_ index: Int) -> (token: String, generation: Int) {
        state.withLock { ($0.tokens[index], $0.generation) }
    }

    /// Renews every token, unless that happened since `generation`; returns once the renewal
    /// in progress ended (successful or not: a failed one is tried again at the next 401).
    func renew(after generation: Int) async {
        let renewal = state.withLock { state -> Task<Void, Never>? in
            guard state.generation == generation else { return nil }
            if let renewal = state.renewal { return renewal }
            let renewal = Task { await self.fetch() }
            state.renewal = renewal
            return renewal
        }
        await renewal?.value
    }

    private func fetch() async {
        let prefix = settings.userPrefix
        let fresh: [String]?
        do {
            let drivers = try await endpoint.benchUsers(prefix: "\(prefix)-driver", count: settings.drivers, group: "driver")
            let riders = try await endpoint.benchUsers(prefix: "\(prefix)-rider", count: settings.riders, group: "rider")
            fresh = (drivers + riders).map(\.access)
        } catch {
            fresh = nil
        }
        state.withLock { state in
            if let fresh, fresh.count == state.tokens.count {
                state.tokens = fresh
                state.generation += 1
            }
            state.renewal = nil
        }
    }
}
