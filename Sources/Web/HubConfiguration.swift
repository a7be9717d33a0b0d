import Configuration
import Foundation
import Hub
import Logging

/// Every knob of a running hub, resolved once at start-up and handed down as plain values.
public struct HubConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8000
    /// Where the embedded store and the generated JWT secret live.
    public var dataDirectory = "./data"
    /// Where uploaded photos are stored; served under `/media/`.
    public var mediaDirectory = "./media"
    /// `postgres://user:pass@host:port/db`; nil keeps state in the embedded SQLite store.
    public var databaseURL: String?
    /// NATS servers (`nats://host:4222`): set, this hub is one node of a cluster (docs/cluster.md),
    /// which the executable joins (`ClusterWiring`); empty, a single hub, and nothing of the
    /// cluster runs.
    public var natsURLs: [String] = []
    /// This node's name in a cluster; required with `natsURLs`.
    public var nodeID: String?
    /// How long a node's lease on its trips lasts without renewal (renewed every third of it).
    public var clusterLease: Duration = .seconds(5)
    /// HS256 secret of at least 32 bytes; nil means "generate once and keep it in the data folder".
    public var jwtSecret: String?
    public var accessTokenLifetime: Duration = .seconds(60 * 60)
    public var refreshTokenLifetime: Duration = .seconds(24 * 60 * 60)
    public var bcryptCost: UInt8 = 12
    public var snapshotInterval: Duration = .seconds(1)
    /// Largest WebSocket message the hub reads; larger ones get a `too_large` error.
    public var maxFrameSize = 64 * 1024
    /// Events that may wait for one slow client before it is disconnected with code 1008.
    public var outboundQueueLength = 1024
    /// After the hub closes a socket (1008, 1001), how long the client has to read its close
    /// frame and answer before the connection is cut.
    public var closeGrace: Duration = .seconds(5)
    /// HTTP/1 requests, the WebSocket handshake included: a head must be complete this long
    /// after the accept (first request) or after its first byte (later ones), else 408.
    public var requestHeadTimeout: Duration = .seconds(10)
    /// A request body must be complete this long after its head, else 408.
    public var requestBodyTimeout: Duration = .seconds(60)
    /// How long a keep-alive connection may wait for its next request before it is closed.
    public var keepAliveTimeout: Duration = .seconds(60)
    /// Threads of the NIO event loops that run every socket (and the trip actors); nil means
    /// one per core.
    public var eventLoops: Int?
    /// Open WebSockets accepted at once; nil means the open-files limit minus `fileReserve`.
    public var maxConnections: Int?
    /// WebSockets one user may hold open at once (tabs, phones); more are refused with 429.
    public var maxConnectionsPerUser = 16
    /// Descriptors kept free for files, the database and plain HTTP when capping sockets.
    public var fileReserve = 512
    /// Largest HTTP request body (sign-up photos).
    public var maxUploadSize = 8 * 1024 * 1024
    /// Largest profile photo, in bytes.
    public var maxPhotoSize = 5 * 1024 * 1024
    public var logLevel: Logger.Level = .info
    /// `update.location` messages one connection may send per second; more get `rate_limited`.
    public var locationRateLimit = 10.0
    /// Every other message (bad ones too) one connection may send per second; more get `rate_limited`.
    public var messageRateLimit = 50.0
    /// Edge of a geo cell in metres.
    public var cellSize = 1_000.0
    /// Nearby dispatch: first search radius, largest radius and how many drivers to alert.
    public var dispatchRadius = 1_000.0
    public var dispatchMaxRadius = 10_000.0
    public var dispatchDrivers = 10
    /// Events per trip kept for `resume`.
    public var tripHistoryLength = 256
    /// The load generator's helpers (`POST /bench/users`, the `/bench/echo` WebSocket). They hand
    /// out access tokens without passwords: never enable them on a public hub.
    public var benchRoutes = false
    /// Origins (`https://app.example.com`) whose pages may call the API from another origin;
    /// empty: the same origin only.
    public var corsOrigins: [String] = []
    /// Street tiles of the browser client's map: a URL template with `{z}`, `{x}` and `{y}`;
    /// empty: the client always draws its plain vector map.
    public var tileURL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    /// Folder of the browser client's files; nil: the copy built into the binary.
    public var webRoot: String?
    /// Log-in attempts one client address may make per minute (bursts of as many); more get 429.
    public var loginRatePerAddress = 60.0
    /// Failed log-ins one username may have per minute (bursts of as many); then 429 until it refills.
    public var loginRatePerUsername = 10.0
    /// bcrypt hashes (log-ins, sign-ups) queued or running at once; more get 503 with Retry-After.
    public var maxPasswordChecks = 16
    /// `idle`: bcrypt on threads in Linux's SCHED_IDLE class (GPS first); `normal`: NIO's pool.
    public var passwordHashingClass = "idle"
    /// How often operator sockets get every driver's position (`operator.drivers`).
    public var operatorFeedInterval: Duration = .milliseconds(250)

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
        settings.historyLength = tripHistoryLength
        return settings
    }

    /// Reads every knob from `reader`, keeping the in-code default where a key is absent.
    /// Keys are the property names (`port`, `jwtSecret`, `snapshotInterval` in seconds, ...).
    public init(reader: ConfigReader) throws {
        let defaults = HubConfiguration()
        host = reader.string(forKey: "host", default: defaults.host)
        port = reader.int(forKey: "port", default: defaults.port)
        dataDirectory = reader.string(forKey: "dataDir", default: defaults.dataDirectory)
        mediaDirectory = reader.string(forKey: "mediaDir", default: defaults.mediaDirectory)
        jwtSecret = reader.string(forKey: "jwtSecret", isSecret: true)
        databaseURL = reader.string(forKey: "databaseUrl", isSecret: true).flatMap { $0.isEmpty ? nil : $0 }
        natsURLs = reader.string(forKey: "natsUrl", default: "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        nodeID = reader.string(forKey: "nodeId").flatMap { $0.isEmpty ? nil : $0 }
        let lease = reader.double(forKey: "clusterLease", default: defaults.clusterLease.seconds)
        guard lease >= 0.5, lease <= 600 else {
            throw ConfigurationError("clusterLease must be a number of seconds from 0.5 to 600, not \(lease).")
        }
        clusterLease = .milliseconds(Int64(lease * 1000))
        if !natsURLs.isEmpty {
            guard databaseURL != nil else {
                throw ConfigurationError(
                    "natsUrl makes this hub a cluster node, which keeps its state in the cluster's shared PostgreSQL: set databaseUrl too (the embedded SQLite store is one hub's alone)."
                )
            }
            guard let nodeID else { throw ConfigurationError("natsUrl needs nodeId: this node's name in the cluster.") }
            if let problem = ClusterNodeID.problem(with: nodeID) { throw ConfigurationError(problem) }
            for url in natsURLs where !(url.hasPrefix("nats://") || url.hasPrefix("tls://")) {
                throw ConfigurationError("natsUrl must list URLs like nats://127.0.0.1:4222, not \(url).")
            }
        }
        accessTokenLifetime = .seconds(reader.int(forKey: "accessTokenLifetime", default: 3600))
        refreshTokenLifetime = .seconds(reader.int(forKey: "refreshTokenLifetime", default: 86400))
        let cost = reader.int(forKey: "bcryptCost", default: Int(defaults.bcryptCost))
        guard (4...31).contains(cost) else { throw ConfigurationError("bcryptCost must be between 4 and 31, not \(cost).") }
        bcryptCost = UInt8(cost)
        let interval = reader.double(forKey: "snapshotInterval", default: 1)
        guard interval > 0, interval.isFinite else {
            throw ConfigurationError("snapshotInterval must be a positive number of seconds, not \(interval).")
        }
        snapshotInterval = .milliseconds(Int64(interval * 1000))
        maxFrameSize = reader.int(forKey: "maxFrameSize", default: defaults.maxFrameSize)
        outboundQueueLength = reader.int(forKey: "outboundQueueLength", default: defaults.outboundQueueLength)
        let grace = reader.double(forKey: "closeGrace", default: defaults.closeGrace.seconds)
        guard grace > 0, grace <= 3600 else {
            throw ConfigurationError("closeGrace must be a number of seconds above 0 and at most 3600, not \(grace).")
        }
        closeGrace = .milliseconds(Int64(grace * 1000))
        let timeouts: [(String, WritableKeyPath<Self, Duration>)] = [
            ("requestHeadTimeout", \.requestHeadTimeout), ("requestBodyTimeout", \.requestBodyTimeout), ("keepAliveTimeout", \.keepAliveTimeout),
        ]
        for (key, setting) in timeouts {
            let seconds = reader.double(forKey: ConfigKey(key), default: defaults[keyPath: setting].seconds)
            guard seconds >= 0.1, seconds <= 3600 else {
                throw ConfigurationError("\(key) must be a number of seconds from 0.1 to 3600, not \(seconds).")
            }
            self[keyPath: setting] = .milliseconds(Int64(seconds * 1000))
        }
        eventLoops = reader.int(forKey: "eventLoops")
        maxConnections = reader.int(forKey: "maxConnections")
        fileReserve = reader.int(forKey: "fileReserve", default: defaults.fileReserve)
        maxConnectionsPerUser = reader.int(forKey: "maxConnectionsPerUser", default: defaults.maxConnectionsPerUser)
        guard maxConnectionsPerUser >= 1 else {
            throw ConfigurationError("maxConnectionsPerUser must be positive, not \(maxConnectionsPerUser).")
        }
        maxUploadSize = reader.int(forKey: "maxUploadSize", default: defaults.maxUploadSize)
        maxPhotoSize = reader.int(forKey: "maxPhotoSize", default: defaults.maxPhotoSize)
        guard maxPhotoSize >= 1 else { throw ConfigurationError("maxPhotoSize must be positive, not \(maxPhotoSize).") }
        let level = reader.string(forKey: "logLevel", default: "info")
        guard let parsed = Logger.Level(rawValue: level) else {
            throw ConfigurationError("logLevel must be one of \(Logger.Level.allCases.map(\.rawValue)), not \(level).")
        }
        logLevel = parsed
        locationRateLimit = reader.double(forKey: "locationRateLimit", default: defaults.locationRateLimit)
        messageRateLimit = reader.double(forKey: "messageRateLimit", default: defaults.messageRateLimit)
        cellSize = reader.double(forKey: "cellSize", default: defaults.cellSize)
        dispatchRadius = reader.double(forKey: "dispatchRadius", default: defaults.dispatchRadius)
        dispatchMaxRadius = reader.double(forKey: "dispatchMaxRadius", default: defaults.dispatchMaxRadius)
        dispatchDrivers = reader.int(forKey: "dispatchDrivers", default: defaults.dispatchDrivers)
        tripHistoryLength = reader.int(forKey: "tripHistoryLength", default: defaults.tripHistoryLength)
        benchRoutes = reader.bool(forKey: "benchRoutes", default: defaults.benchRoutes)
        corsOrigins = reader.string(forKey: "corsOrigins", default: "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for origin in corsOrigins where !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) || origin.hasSuffix("/") {
            throw ConfigurationError("corsOrigins must list origins like https://app.example.com (no path), not \(origin).")
        }
        tileURL = reader.string(forKey: "tileUrl", default: defaults.tileURL)
        if !tileURL.isEmpty, !(["{z}", "{x}", "{y}"].allSatisfy { tileURL.contains($0) }) {
            throw ConfigurationError("tileUrl must contain {z}, {x} and {y} (or be empty for the plain map), not \(tileURL).")
        }
        webRoot = reader.string(forKey: "webRoot").flatMap { $0.isEmpty ? nil : $0 }
        if let webRoot, !FileManager.default.fileExists(atPath: webRoot + "/index.html") {
            throw ConfigurationError("webRoot must be a folder with an index.html; \(webRoot) has none.")
        }
        let feedInterval = reader.double(forKey: "operatorFeedInterval", default: defaults.operatorFeedInterval.seconds)
        guard feedInterval >= 0.05, feedInterval <= 60 else {
            throw ConfigurationError("operatorFeedInterval must be between 0.05 and 60 seconds, not \(feedInterval).")
        }
        operatorFeedInterval = .milliseconds(Int64(feedInterval * 1000))
        loginRatePerAddress = reader.double(forKey: "loginRatePerAddress", default: defaults.loginRatePerAddress)
        loginRatePerUsername = reader.double(forKey: "loginRatePerUsername", default: defaults.loginRatePerUsername)
        maxPasswordChecks = reader.int(forKey: "maxPasswordChecks", default: defaults.maxPasswordChecks)
        passwordHashingClass = reader.string(forKey: "passwordHashingClass", default: defaults.passwordHashingClass)
        guard ["idle", "normal"].contains(passwordHashingClass) else {
            throw ConfigurationError("passwordHashingClass must be idle or normal, not \(passwordHashingClass).")
        }
        guard (1...100_000).contains(maxPasswordChecks) else {
            throw ConfigurationError("maxPasswordChecks must be between 1 and 100000, not \(maxPasswordChecks).")
        }
        for (name, value) in [
            ("locationRateLimit", locationRateLimit), ("messageRateLimit", messageRateLimit), ("cellSize", cellSize), ("dispatchRadius", dispatchRadius),
            ("dispatchMaxRadius", dispatchMaxRadius), ("loginRatePerAddress", loginRatePerAddress),
            ("loginRatePerUsername", loginRatePerUsername),
        ] where !(value.isFinite && value > 0) {
            throw ConfigurationError("\(name) must be a positive number, not \(value).")
        }
        guard cellSize >= 1 else {
            throw ConfigurationError("cellSize must be at least 1 metre, not \(cellSize).")
        }
        guard dispatchMaxRadius >= dispatchRadius else {
            throw ConfigurationError("dispatchMaxRadius (\(dispatchMaxRadius)) must be at least dispatchRadius (\(dispatchRadius)).")
        }
        for (name, value) in [
            ("maxFrameSize", maxFrameSize), ("outboundQueueLength", outboundQueueLength),
            ("dispatchDrivers", dispatchDrivers), ("tripHistoryLength", tripHistoryLength),
        ] where value < 1 {
            throw ConfigurationError("\(name) must be positive, not \(value).")
        }
        if let eventLoops, !(1...256).contains(eventLoops) {
            throw ConfigurationError("eventLoops must be between 1 and 256, not \(eventLoops).")
        }
        if let maxConnections, maxConnections < 1 {
            throw ConfigurationError("maxConnections must be positive, not \(maxConnections).")
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
