import BenchSupport
import Foundation
import Hub
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import Persistence
import ServiceLifecycle

/// A built hub: the Hummingbird application (HTTP, WebSocket, snapshot loop) and the service
/// that closes WebSockets with 1001 on a graceful stop before the server goes away.
public struct HubServer: Sendable {
    public let application: Application<RouterResponder<HubRequestContext>>
    /// Every route the router registered, as `"METHOD /path/{parameter}"` in Hummingbird's
    /// spelling (`:trip_id` becomes `{trip_id}`; trailing slashes dropped, since the router
    /// ignores them). Read by the test that holds docs/openapi.yaml to the routes; changes
    /// nothing the hub serves. Paths answered by middleware (`/media/`, the client's files)
    /// are not routes and are not listed.
    public let routes: [String]
    let socketDrain: SocketDrainService
    /// The event loops made for `eventLoops`, shut down after the run; nil with the shared ones.
    let ownedEventLoops: MultiThreadedEventLoopGroup?

    /// Runs until SIGINT or SIGTERM, then stops gracefully: sockets closed with 1001, the
    /// server stopped, a final snapshot written.
    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: application), .init(service: socketDrain)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: application.logger
            )
        )
        try await group.run()
        try await shutdownEventLoops()
    }

    /// Stops the event loops made for `HubConfiguration.eventLoops` once the application is done
    /// (`run` does it; so do tests that run `application` themselves). The shared loops stay.
    public func shutdownEventLoops() async throws {
        try await ownedEventLoops?.shutdownGracefully()
    }
}

/// What the executable hands `buildHub` to run the hub as one node of a cluster (docs/cluster.md).
/// The web layer sees the cluster only through the protocols `Hub` defines; `taxi-hub serve` makes
/// this from the configuration when NATS is set.
public struct ClusterWiring: Sendable {
    /// The shared PostgreSQL as this node uses it: it loads only the trips the node owns and never
    /// overwrites a trip another node took over.
    public var store: any SnapshotStore
    /// Takes the node's lease and joins the hub to the cluster; commits trip changes under it.
    public var joining: any ClusterJoining

    public init(store: any SnapshotStore, joining: any ClusterJoining) {
        self.store = store
        self.joining = joining
    }
}

/// Builds the whole hub — store, actors, routes, WebSocket bridge and snapshot loop — from
/// one configuration. `taxi-hub serve` and the tests both go through here.
///
/// - Parameter cluster: makes the hub one node of a cluster; nil for a single hub. A configuration
///   that names a cluster (`isClusterNode`) needs it.
public func buildHub(configuration: HubConfiguration, logger: Logger, cluster: ClusterWiring? = nil) async throws -> HubServer {
    if configuration.isClusterNode, cluster == nil {
        throw ConfigurationError("natsUrl makes this hub a cluster node, but it was built without the cluster to join; run it with taxi-hub serve.")
    }
    let limits = FileLimits.raiseToHardLimit()
    let maxConnections = configuration.maxConnections ?? max(16, limits.soft - configuration.fileReserve)
    logger.info(
        "open-files limit raised to \(limits.soft) (hard \(limits.hard)); accepting up to \(maxConnections) WebSockets"
    )

    let store: any SnapshotStore
    if let cluster {
        logger.info(
            "store: PostgreSQL",
            metadata: ["database": "\(PostgresURL.redacted(configuration.databaseURL ?? "-"))", "node": "\(cluster.joining.nodeID)"]
        )
        store = cluster.store
    } else {
        store = try makeStore(configuration, logger: logger)
    }
    let ownedEventLoops = configuration.eventLoops.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) }
    let eventLoops: any EventLoopGroup = ownedEventLoops ?? MultiThreadedEventLoopGroup.singleton
    let metrics = HubMetrics()
    // A single hub journals trip changes and sign-ups in its data folder; a cluster node commits
    // them to the shared PostgreSQL under its lease instead (`ClusterJoining.commits`).
    let journal: TripJournal?
    let write: GroupCommitLog.Write
    if let cluster {
        journal = nil
        let commits = cluster.joining.commits
        write = { batch in try await commits.commit(batch) }
    } else {
        let own = try TripJournal(directory: configuration.dataDirectory)
        journal = own
        write = { batch in try await own.append(batch) }
    }
    let commitLog = GroupCommitLog(
        write: write,
        onCommit: { metrics.committed($0) },
        onFailure: { error in
            logger.critical("trip changes can no longer be made durable; stopping", metadata: ["error": "\(error)"])
            ProcessExit.soon(code: journal == nil ? ProcessExit.leaseLost : ProcessExit.journalFailed)
        },
        spawn: { work in Task(executorPreference: journal?.taskExecutor) { await work() } }
    )
    let hub = Hub(
        commitLog: commitLog, settings: configuration.hubSettings, executors: EventLoopTripExecutors(group: eventLoops)
    )
    let connections = ConnectionRegistry(limit: maxConnections, perUserLimit: configuration.maxConnectionsPerUser)
    let startup = HubStartup(hub: hub, store: store, journal: journal, connections: connections, logger: logger)
    // The usual case loads here, before the server answers anything; a store that is down
    // is retried in the background while /readyz says why.
    // A cluster node holds its lease before it loads its trips, so no node takes them over meanwhile.
    let member = try await cluster?.joining.join(hub)
    await startup.load()

    let tokens = try await TokenService(configuration: configuration, logger: logger)
    let auth = Authenticator(tokens: tokens, users: hub.users)
    let snapshotStatus = SnapshotStatus()
    let operators = OperatorFeed(
        hub: hub, connections: connections, metrics: metrics, startup: startup, snapshot: snapshotStatus,
        storeKind: configuration.databaseURL == nil ? "sqlite" : "postgresql", interval: configuration.operatorFeedInterval
    )
    let snapshots = SnapshotService(
        store: store, tracker: hub.changes, interval: configuration.snapshotInterval, status: snapshotStatus, logger: logger,
        journal: journal
    ) { persisted in
        operators.recordFinished(persisted.trips.values)
        hub.evictPersisted(persisted.trips.values)
    }

    let passwords = PasswordHasher(
        cost: configuration.bcryptCost, maxWaiting: configuration.maxPasswordChecks,
        threadClass: configuration.passwordHashingClass == "normal" ? .normal : .idle
    )
    let router = Router(context: HubRequestContext.self)
    router.add(middleware: RefusalCountingMiddleware(metrics: metrics))
    router.add(middleware: CORSPolicyMiddleware(origins: configuration.corsOrigins))
    router.add(middleware: ReadinessMiddleware(startup: startup))
    router.add(middleware: IgnoreRangeMiddleware())
    router.add(middleware: MediaMiddleware(mediaDirectory: configuration.mediaDirectory, logger: logger))
    if let webRoot = WebClientMiddleware.root(configured: configuration.webRoot) {
        router.add(middleware: WebClientMiddleware(root: webRoot, logger: logger))
    } else {
        logger.warning("the browser client's files were not found next to the executable; set webRoot to serve them")
    }
    ClientController(tileURL: configuration.tileURL, pickupRadius: configuration.pickupRadius).addRoutes(to: router)
    AuthController(
        users: hub.users, cluster: member, tokens: tokens, passwords: passwords,
        photos: PhotoStore(mediaDirectory: configuration.mediaDirectory), maxUploadSize: configuration.maxUploadSize,
        maxPhotoSize: configuration.maxPhotoSize, throttle: LoginThrottle(perAddress: configuration.loginRatePerAddress, perUsername: configuration.loginRatePerUsername),
        metrics: metrics
    ).addRoutes(to: router)
    OperatorController(users: hub.users, tokens: tokens, passwords: passwords)
        .addRoutes(to: router)
    TripController(hub: hub, store: store, auth: auth, cluster: member).addRoutes(to: router)
    DemandController(hub: hub, auth: auth).addRoutes(to: router)
    HealthController(
        hub: hub, cluster: member, startup: startup, snapshot: snapshotStatus, metrics: metrics, connections: connections,
        maxSnapshotLag: max(30, 10 * configuration.snapshotInterval.seconds)
    ).addRoutes(to: router)
    if configuration.benchRoutes {
        logger.warning("bench routes are on: /bench/users hands out tokens without passwords; never on a public hub")
        BenchController(users: hub.users, tokens: tokens, passwords: passwords)
            .addRoutes(to: router)
    }
    let sockets = SocketController(
        hub: hub, store: store, auth: auth, connections: connections, metrics: metrics, operators: operators,
        maxMessageSize: configuration.maxFrameSize, queueLength: configuration.outboundQueueLength,
        closeGrace: configuration.closeGrace,
        locationRate: configuration.locationRateLimit, messageRate: configuration.messageRateLimit, echoPath: configuration.benchRoutes ? BenchController.echoPath : nil
    )
    sockets.addFallbackRoute(to: router)
    let application = Application(
        router: router,
        server: HTTPServerBuilder { responder in
            CapacityGateChannel(
                inner: HubSocketChannel(
                    responder: responder, sockets: sockets,
                    maxFrameSize: ClientSession.transportLimit(forMessageSize: configuration.maxFrameSize),
                    timeouts: RequestTimeouts(
                        head: configuration.requestHeadTimeout, body: configuration.requestBodyTimeout, keepAlive: configuration.keepAliveTimeout
                    )
                ),
                connections: connections, metrics: metrics
            )
        },
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "taxi-hub"),
        services: [StoreService(startup: startup, snapshots: snapshots), operators, DispatchService(hub: hub, startup: startup)]
            + (member.map { [ClusterDutiesService(node: $0)] } ?? []),
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            logger.info("taxi-hub listening on \(configuration.host):\(port)")
            logger.notice("open the browser client at \(configuration.localBaseURL(port: port))/")
        },
        eventLoopGroupProvider: .shared(eventLoops),
        logger: logger
    )
    return HubServer(
        application: application, routes: router.routes.map { "\($0.method) \($0.path)" },
        socketDrain: SocketDrainService(connections: connections, logger: logger),
        ownedEventLoops: ownedEventLoops
    )
}

/// Applies the configured store's schema migrations (`taxi-hub migrate`).
public func migrateStore(configuration: HubConfiguration, logger: Logger) async throws {
    try await makeStore(configuration, logger: logger).migrate()
    logger.info("schema is up to date")
}

/// PostgreSQL when a database URL is configured, else the embedded SQLite store in the data folder.
/// A single hub's store; a cluster node's comes with its `ClusterWiring`.
func makeStore(_ configuration: HubConfiguration, logger: Logger) throws -> any SnapshotStore {
    if let url = configuration.databaseURL {
        logger.info("store: PostgreSQL", metadata: ["database": "\(PostgresURL.redacted(url))"])
        return PostgresSnapshotStore(url: url)
    }
    logger.info("store: SQLite in \(configuration.dataDirectory)")
    return try SQLiteSnapshotStore(directory: configuration.dataDirectory)
}
