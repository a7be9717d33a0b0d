import Hub
import Logging
import Persistence
import ServiceLifecycle
import Synchronization

/// Brings the hub's state in from the store: schema migrations, the journal's changes that the
/// store lacks (a single hub's trip changes acknowledged after its last snapshot), then users and
/// unfinished trips into the actors. While the store cannot be reached (a database that is down at
/// start), it retries with backoff and says why on `/readyz`; sockets and API calls are
/// refused with 503 until the state is loaded, so nothing runs on a half-empty hub.
final class HubStartup: Sendable {
    enum State: Sendable, Equatable {
        case loading(attempts: Int, lastError: String?)
        case ready
    }

    private let state = Mutex(State.loading(attempts: 0, lastError: nil))
    private let hub: Hub
    private let store: any SnapshotStore
    private let journal: TripJournal?
    private let connections: ConnectionRegistry
    private let logger: Logger

    init(hub: Hub, store: any SnapshotStore, journal: TripJournal?, connections: ConnectionRegistry, logger: Logger) {
        self.hub = hub
        self.store = store
        self.journal = journal
        self.connections = connections
        self.logger = logger
    }

    var current: State { state.withLock { $0 } }

    var isReady: Bool { current == .ready }

    /// One attempt; true once the state is loaded.
    @discardableResult
    func load() async -> Bool {
        guard !isReady else { return true }
        do {
            try await store.migrate()
            if let journal {
                let recovered = try await JournalRecovery.recover(journal: journal, into: store)
                if recovered != JournalRecovery.Outcome() {
                    logger.notice(
                        "journal replayed into the store",
                        metadata: ["trips": "\(recovered.trips)", "users": "\(recovered.users)", "already_stored": "\(recovered.skipped)"]
                    )
                }
            }
            let stored = try await store.restore(into: hub)
            state.withLock { $0 = .ready }
            connections.startAccepting()
            logger.info("state loaded", metadata: ["users": "\(stored.users.count)", "live_trips": "\(stored.trips.count)"])
            return true
        } catch {
            state.withLock { state in
                if case .loading(let attempts, _) = state { state = .loading(attempts: attempts + 1, lastError: "\(error)") }
            }
            logger.error("cannot load state from the store; retrying", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Retries `load` with exponential backoff (0.5 s doubling to 30 s) until it succeeds or
    /// the hub shuts down.
    func retryUntilLoaded() async {
        var delay = Duration.milliseconds(500)
        while !(await load()) {
            guard (try? await Task.sleep(for: delay)) != nil, !Task.isShuttingDownGracefully else { return }
            delay = min(delay * 2, .seconds(30))
        }
    }
}

/// Runs `HubStartup`'s retries, then the snapshot loop, as one service: snapshots only start
/// once the state they add to is loaded.
struct StoreService: Service {
    let startup: HubStartup
    let snapshots: SnapshotService

    func run() async throws {
        await startup.retryUntilLoaded()
        guard startup.isReady else { return }
        try await snapshots.run()
    }
}
