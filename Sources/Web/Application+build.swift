import Foundation
import Hub
import Hummingbird
import HummingbirdWebSocket
import Logging
import Persistence

/// Builds the whole hub — store, actors, routes, WebSocket bridge and snapshot loop — from
/// one configuration. `taxi-hub serve` and the tests both go through here.
public func buildApplication(
    configuration: HubConfiguration, logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    let limits = FileLimits.raiseToHardLimit()
    let maxConnections = configuration.maxConnections ?? max(16, limits.soft - configuration.fileReserve)
    logger.info(
        "open-files limit raised to \(limits.soft) (hard \(limits.hard)); accepting up to \(maxConnections) WebSockets"
    )

    let store = try SQLiteSnapshotStore(directory: configuration.dataDirectory)
    try await store.migrate()
    let hub = Hub()
    hub.restore(users: try await store.loadUsers(), trips: try await store.loadUnfinishedTrips())
    logger.info("state loaded", metadata: ["users": "\(hub.users.count)", "live_trips": "\(hub.index.countsByStatus().values.reduce(0, +))"])

    let secret = try configuration.jwtSecret ?? JWTSecretFile.loadOrCreate(in: configuration.dataDirectory, logger: logger)
    let tokens = try await TokenService(
        secret: secret, accessLifetime: configuration.accessTokenLifetime, refreshLifetime: configuration.refreshTokenLifetime
    )
    let auth = Authenticator(tokens: tokens, users: hub.users)
    let metrics = HubMetrics()
    let snapshotStatus = SnapshotStatus()
    let snapshots = SnapshotService(
        store: store, tracker: hub.changes, interval: configuration.snapshotInterval, status: snapshotStatus, logger: logger
    ) { persisted in
        hub.evictPersisted(persisted.trips.values)
    }

    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: FileMiddleware(configuration.mediaDirectory, urlBasePath: "/media", logger: logger))
    AuthController(
        users: hub.users, tokens: tokens, passwords: PasswordHasher(cost: configuration.bcryptCost),
        photos: PhotoStore(mediaDirectory: configuration.mediaDirectory), maxUploadSize: configuration.maxUploadSize
    ).addRoutes(to: router)
    TripController(hub: hub, store: store, auth: auth).addRoutes(to: router)
    HealthController(
        hub: hub, snapshot: snapshotStatus, metrics: metrics, maxSnapshotLag: max(30, 10 * configuration.snapshotInterval.seconds)
    ).addRoutes(to: router)
    let sockets = SocketController(
        hub: hub, auth: auth, limiter: ConnectionLimiter(limit: maxConnections), metrics: metrics,
        maxMessageSize: configuration.maxFrameSize, queueLength: configuration.outboundQueueLength
    )
    sockets.addFallbackRoute(to: router)
    let socketRouter = Router(context: SocketRequestContext.self)
    sockets.addRoutes(to: socketRouter)

    return Application(
        router: router,
        server: .http1WebSocketUpgrade(
            webSocketRouter: socketRouter,
            configuration: .init(
                ws: .init(maxFrameSize: ClientSession.transportLimit(forMessageSize: configuration.maxFrameSize))
            )
        ),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "taxi-hub"),
        services: [snapshots],
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            logger.info("taxi-hub listening on \(configuration.host):\(port)")
            await onServerRunning(port)
        },
        logger: logger
    )
}
