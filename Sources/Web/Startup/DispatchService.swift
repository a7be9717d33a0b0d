import Hub
import ServiceLifecycle

/// Moves the waiting trips' offer rounds on (`Hub.dispatchTick`) every `interval` for the life of
/// the server: offers expire, rounds widen, late drivers are offered, and requests past
/// `dispatchTimeout` end as `no_driver_found`. The hub reads the time from its own clock; this only
/// says when. Starts once the state is loaded, so restored waiting trips get their offers then.
struct DispatchService: Service {
    /// How often the tick runs: offers expire, and requests end, at most this late.
    static let interval = Duration.milliseconds(500)

    let hub: Hub
    let startup: HubStartup
    var interval = DispatchService.interval

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            guard (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: interval) })) != nil else { return }
            guard startup.isReady else { continue }
            await hub.dispatchTick()
        }
    }
}
