import Configuration
import Foundation
import Hub
import Logging

/// Every knob of a running hub, resolved once at start-up and handed down as plain values.
///
/// Each setting is declared once, below, by its `@Setting`: its name (the config file's key; the
/// flag and the `TAXI_HUB_*` variable follow from it), group, help, check and default. `--help`,
/// `init(reader:)` and the tests of `config/taxi-hub.json` and docs/configuration.md read them
/// from `HubConfiguration.settings`.
public struct HubConfiguration: Sendable {
    @Setting("host", help: "Address to listen on.")
    public var host = "127.0.0.1"
    @Setting("port", help: "Port to listen on (0 picks a free one).", check: .within(0...65535))
    public var port = 8000
    @Setting("eventLoops", help: "Event-loop threads serving the sockets and running the trip actors (default: one per core).", check: .ifSet(.within(1...256)))
    public var eventLoops: Int? = nil
    @Setting("logLevel", help: "trace, debug, info, notice, warning, error or critical; logs go to stderr.")
    public var logLevel: Logger.Level = .info

    // Where state lives.
    /// Where the embedded store and the generated JWT secret live.
    @Setting("dataDir", in: .store, help: "Folder of the embedded store and the generated JWT secret.")
    public var dataDirectory = "./data"
    /// Where uploaded photos are stored; served under `/media/`.
    @Setting("mediaDir", in: .store, help: "Folder for uploaded photos, served at /media/.")
    public var mediaDirectory = "./media"
    /// `postgres://user:pass@host:port/db`; nil keeps state in the embedded SQLite store.
    @Setting("databaseUrl", in: .store, secret: true, help: "PostgreSQL URL (postgres://user:pass@host:port/db); default: SQLite in the data folder.")
    public var databaseURL: String? = nil
    @Setting("snapshotInterval", in: .store, help: "Seconds between snapshots to the store.", check: .positive)
    public var snapshotInterval: Duration = .seconds(1)

    // A cluster (docs/cluster.md).
    /// NATS servers (`nats://host:4222`): set, this hub is one node of a cluster, which the
    /// executable joins (`ClusterWiring`); empty, a single hub, and nothing of the cluster runs.
    @Setting(
        "natsUrl", in: .cluster,
        help: "NATS server(s), comma separated (nats://host:4222): makes this hub one node of a cluster (needs databaseUrl and nodeId).",
        check: SettingCheck("must list URLs like nats://127.0.0.1:4222") { $0.allSatisfy { $0.hasPrefix("nats://") || $0.hasPrefix("tls://") } }
    )
    public var natsURLs: [String] = []
    /// This node's name in a cluster; required with `natsURLs`.
    @Setting("nodeId", in: .cluster, help: "This node's name in a cluster: unique, stable across restarts (a-z, 0-9, -).")
    public var nodeID: String? = nil
    /// How long a node's lease on its trips lasts without renewal (renewed every third of it).
    @Setting("clusterLease", in: .cluster, help: "Seconds a cluster node's lease on its trips lasts without renewal.", check: .within(.milliseconds(500) ... .seconds(600)))
    public var clusterLease: Duration = .seconds(5)

    // Accounts and tokens.
    /// HS256 secret of at least 32 bytes; nil means "generate once and keep it in the data folder".
    /// No flag (it would show in the process list); an empty one is refused, not taken for unset.
    @Setting("jwtSecret", secret: true, flag: false, emptyIsUnset: false, help: "HS256 signing secret of at least 32 bytes (default: generated once, kept in the data folder).")
    public var jwtSecret: String? = nil
    @Setting("accessTokenLifetime", help: "Access token lifetime in seconds.", check: .positive)
    public var accessTokenLifetime: Duration = .seconds(60 * 60)
    @Setting("refreshTokenLifetime", help: "Refresh token lifetime in seconds.", check: .positive)
    public var refreshTokenLifetime: Duration = .seconds(24 * 60 * 60)
    @Setting("bcryptCost", help: "bcrypt work factor for password hashes (4-31).", check: SettingCheck("must be between 4 and 31") { (4...31).contains($0) })
    public var bcryptCost: UInt8 = 12
    /// `idle`: bcrypt on threads in Linux's SCHED_IDLE class (GPS first); `normal`: NIO's pool.
    @Setting(
        "passwordHashingClass", help: "idle: bcrypt only on cycles GPS leaves (default); normal: NIO's thread pool.",
        check: SettingCheck("must be idle or normal") { ["idle", "normal"].contains($0) }
    )
    public var passwordHashingClass = "idle"

    // HTTP and WebSocket timing.
    /// After the hub closes a socket (1008, 1001), how long the client has to read its close
    /// frame and answer before the connection is cut.
    @Setting("closeGrace", help: "Seconds a client the hub closed has to read its close frame.", check: SettingCheck("must be above 0 and at most 3600 seconds") { $0 > .zero && $0 <= .seconds(3600) })
    public var closeGrace: Duration = .seconds(5)
    /// HTTP/1 requests, the WebSocket handshake included: a head must be complete this long
    /// after the accept (first request) or after its first byte (later ones), else 408.
    @Setting("requestHeadTimeout", help: "Seconds a client has to send a request head; then 408.", check: .within(.milliseconds(100) ... .seconds(3600)))
    public var requestHeadTimeout: Duration = .seconds(10)
    /// A request body must be complete this long after its head, else 408.
    @Setting("requestBodyTimeout", help: "Seconds a client has to send a request body after its head; then 408.", check: .within(.milliseconds(100) ... .seconds(3600)))
    public var requestBodyTimeout: Duration = .seconds(60)
    /// How long a keep-alive connection may wait for its next request before it is closed.
    @Setting("keepAliveTimeout", help: "Seconds an idle keep-alive connection is kept open.", check: .within(.milliseconds(100) ... .seconds(3600)))
    public var keepAliveTimeout: Duration = .seconds(60)

    // Limits on what clients may take.
    /// Largest WebSocket message the hub reads; larger ones get a `too_large` error.
    @Setting("maxFrameSize", in: .limits, help: "Largest client message in bytes.", check: .positive)
    public var maxFrameSize = 64 * 1024
    /// Events that may wait for one slow client before it is disconnected with code 1008.
    @Setting("outboundQueueLength", in: .limits, help: "Events queued for one client before it is dropped.", check: .positive)
    public var outboundQueueLength = 1024
    /// Open WebSockets accepted at once; nil means the open-files limit minus `fileReserve`.
    @Setting("maxConnections", in: .limits, help: "Most WebSockets open at once (default: the open-files limit minus fileReserve).", check: .ifSet(.positive))
    public var maxConnections: Int? = nil
    /// WebSockets one user may hold open at once (tabs, phones); more are refused with 429.
    @Setting("maxConnectionsPerUser", in: .limits, help: "Most WebSockets one user may hold open.", check: .positive)
    public var maxConnectionsPerUser = 16
    /// Descriptors kept free for files, the database and plain HTTP when capping sockets.
    @Setting("fileReserve", in: .limits, help: "File descriptors kept free for files, the store and plain HTTP when the default socket cap is computed.")
    public var fileReserve = 512
    /// Largest HTTP request body (sign-up photos).
    @Setting("maxUploadSize", in: .limits, help: "Largest request body in bytes (a sign-up with its photo).")
    public var maxUploadSize = 8 * 1024 * 1024
    @Setting("maxPhotoSize", in: .limits, help: "Largest profile photo in bytes.", check: .positive)
    public var maxPhotoSize = 5 * 1024 * 1024
    /// `update.location` messages one connection may send per second; more get `rate_limited`.
    @Setting("locationRateLimit", in: .limits, help: "update.location messages per second per connection.", check: .positive)
    public var locationRateLimit = 10.0
    /// Every other message (bad ones too) one connection may send per second; more get `rate_limited`.
    @Setting("messageRateLimit", in: .limits, help: "Messages besides locations per second per connection.", check: .positive)
    public var messageRateLimit = 50.0
    /// Log-in attempts one client address may make per minute (bursts of as many); more get 429.
    @Setting("loginRatePerAddress", in: .limits, help: "Log-in attempts per minute from one client address.", check: .positive)
    public var loginRatePerAddress = 60.0
    /// Failed log-ins one username may have per minute (bursts of as many); then 429 until it refills.
    @Setting("loginRatePerUsername", in: .limits, help: "Failed log-ins per minute for one username.", check: .positive)
    public var loginRatePerUsername = 10.0
    /// bcrypt hashes (log-ins, sign-ups) queued or running at once; more get 503 with Retry-After.
    @Setting("maxPasswordChecks", in: .limits, help: "bcrypt hashes queued or running at once; more get 503.", check: SettingCheck("must be between 1 and 100000") { (1...100_000).contains($0) })
    public var maxPasswordChecks = 16

    // Dispatch.
    /// Edge of a geo cell in metres.
    @Setting("cellSize", help: "Edge of a geo cell in metres.", check: SettingCheck("must be at least 1 metre") { $0 >= 1 })
    public var cellSize = 1_000.0
    /// Offer rounds (docs/protocol.md §3.3): the first round's radius, the step each later round
    /// adds, the largest radius, and how many drivers each round asks.
    @Setting("dispatchRadius", help: "Radius in metres of the first offer round around a pick-up.", check: .positive)
    public var dispatchRadius = 1_000.0
    @Setting("dispatchRadiusStep", help: "Metres each later offer round reaches farther than the one before (0: every round the same).", check: .within(0...100_000))
    public var dispatchRadiusStep = 1_000.0
    @Setting("dispatchMaxRadius", help: "Largest radius in metres an offer round reaches.", check: .positive)
    public var dispatchMaxRadius = 10_000.0
    @Setting("dispatchDrivers", help: "Drivers each offer round of a trip with a pick-up location asks at most.", check: .positive)
    public var dispatchDrivers = 10
    /// How long a driver has to accept or decline an offer; then the offer expires.
    @Setting("offerTimeout", help: "Seconds a driver has to accept or decline an offer.", check: .within(.seconds(1) ... .seconds(600)))
    public var offerTimeout: Duration = .seconds(15)
    /// How long a request waits for a driver before it ends CANCELED with no_driver_found.
    @Setting("dispatchTimeout", help: "Seconds a request waits for a driver before it ends as no_driver_found.", check: .within(.seconds(1) ... .seconds(3600)))
    public var dispatchTimeout: Duration = .seconds(120)
    /// A driver without a fix for this long gets no offers of trips with a pick-up point.
    @Setting("stalePositionAfter", help: "Seconds without a fix after which a driver gets no offers of trips with a pick-up point.", check: .within(.seconds(1) ... .seconds(3600)))
    public var stalePositionAfter: Duration = .seconds(30)
    /// Within this of the pick-up the rider hears "driver arriving", and "arrived" once it waits.
    @Setting("arrivalRadius", help: "Metres from the pick-up within which the rider hears that the driver is arriving, then arrived.", check: .within(1...10_000))
    public var arrivalRadius = 50.0
    /// IN_PROGRESS is refused farther than this from the pick-up point; 0 switches the check off.
    @Setting("pickupRadius", help: "Metres from the pick-up beyond which IN_PROGRESS is refused (0: not checked).", check: .within(0...100_000))
    public var pickupRadius = 150.0
    /// The ETA model: straight-line distance × detourFactor ÷ speed (the driver's recent speed, or this).
    @Setting("citySpeed", help: "Average city speed in km/h for ETAs when a driver's own speed is not known.", check: .within(1...200))
    public var citySpeed = 25.0
    @Setting("detourFactor", help: "Road distance over straight-line distance, for ETAs.", check: .within(1...5))
    public var detourFactor = 1.3
    /// Events per trip kept for `resume`.
    @Setting("tripHistoryLength", help: "Events per trip kept for resume.", check: .positive)
    public var tripHistoryLength = 256

    // The browser client and its API.
    /// Origins (`https://app.example.com`) whose pages may call the API from another origin;
    /// empty: the same origin only.
    @Setting(
        "corsOrigins", help: "Comma-separated origins whose pages may call the API (default: same origin only).",
        check: SettingCheck("must list origins like https://app.example.com (no path)") {
            $0.allSatisfy { ($0.hasPrefix("http://") || $0.hasPrefix("https://")) && !$0.hasSuffix("/") }
        }
    )
    public var corsOrigins: [String] = []
    /// Street tiles of the browser client's map: a URL template with `{z}`, `{x}` and `{y}`;
    /// empty: the client always draws its plain vector map.
    @Setting(
        "tileUrl", help: "Street tiles for the browser client's map ({z}/{x}/{y} template; empty: plain map).",
        check: SettingCheck("must contain {z}, {x} and {y} (or be empty for the plain map)") { url in
            url.isEmpty || ["{z}", "{x}", "{y}"].allSatisfy { url.contains($0) }
        }
    )
    public var tileURL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    /// Folder of the browser client's files; nil: the copy built into the binary.
    @Setting(
        "webRoot", help: "Folder of the browser client's files (default: the copy built in).",
        check: .ifSet(SettingCheck("must be a folder with an index.html") { FileManager.default.fileExists(atPath: $0 + "/index.html") })
    )
    public var webRoot: String? = nil
    /// How often operator sockets get every driver's position (`operator.drivers`).
    @Setting("operatorFeedInterval", help: "Seconds between the driver positions sent to operators.", check: .within(.milliseconds(50) ... .seconds(60)))
    public var operatorFeedInterval: Duration = .milliseconds(250)
    /// The load generator's helpers (`POST /bench/users`, the `/bench/echo` WebSocket). They hand
    /// out access tokens without passwords: never enable them on a public hub.
    @Setting("benchRoutes", help: "Serve the load generator's /bench/ routes (tokens without passwords: never on a public hub).")
    public var benchRoutes = false

    public init() {}

    /// Where a client on this machine reaches the hub listening on `host` and `port` (or the port
    /// it was given): a wildcard address is reached on loopback.
    public func localBaseURL(port: Int? = nil) -> String {
        let reachable =
            switch host {
            case "0.0.0.0", "": "127.0.0.1"
            case "::", "[::]": "[::1]"
            default: host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
            }
        return "http://\(reachable):\(port ?? self.port)"
    }

    /// Whether this hub is one node of a cluster (`natsURLs` and `nodeID` set); false for a single hub.
    public var isClusterNode: Bool {
        !natsURLs.isEmpty && nodeID != nil
    }

    /// What the hub's actors need of this configuration.
    public var hubSettings: Hub.Settings {
        var settings = Hub.Settings()
        settings.grid = CellGrid(cellSize: cellSize)
        settings.dispatch = DispatchPolicy(initialRadius: dispatchRadius, maxRadius: dispatchMaxRadius, driverCount: dispatchDrivers)
        settings.offers = OfferPolicy(
            radiusStep: dispatchRadiusStep, offerTimeout: offerTimeout, dispatchTimeout: dispatchTimeout, stalePositionAfter: stalePositionAfter
        )
        settings.eta = ETAModel(citySpeed: citySpeed, detourFactor: detourFactor)
        settings.pickUp = PickUpPolicy(arrivalRadius: arrivalRadius, pickUpRadius: pickupRadius)
        settings.historyLength = tripHistoryLength
        return settings
    }

    /// Reads every setting from `reader` (made by `HubConfiguration.reader(providers:)`), keeping
    /// the default where none is given; throws a message naming the first unusable setting.
    public init(reader: ConfigReader) throws {
        self = SettingSource.$reader.withValue(reader) { HubConfiguration() }
        if let problem = reflectedSettings.lazy.compactMap(\.problem).first { throw ConfigurationError(problem) }
        if !natsURLs.isEmpty {
            guard databaseURL != nil else {
                throw ConfigurationError(
                    "natsUrl makes this hub a cluster node, which keeps its state in the cluster's shared PostgreSQL: set databaseUrl too (the embedded SQLite store is one hub's alone)."
                )
            }
            guard let nodeID else { throw ConfigurationError("natsUrl needs nodeId: this node's name in the cluster.") }
            if let problem = ClusterNodeID.problem(with: nodeID) { throw ConfigurationError(problem) }
        }
        guard dispatchMaxRadius >= dispatchRadius else {
            throw ConfigurationError("dispatchMaxRadius (\(dispatchMaxRadius)) must be at least dispatchRadius (\(dispatchRadius)).")
        }
        guard dispatchTimeout >= offerTimeout else {
            throw ConfigurationError(
                "dispatchTimeout (\(dispatchTimeout.settingDescription) seconds) must be at least offerTimeout (\(offerTimeout.settingDescription) seconds): a request must outlive its first offers."
            )
        }
    }
}

/// A configuration value that cannot be used; the message says which and why.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
