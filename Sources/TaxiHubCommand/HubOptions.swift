import ArgumentParser
import Configuration
import Foundation
import Logging
import SystemPackage
import Web

/// The settings every subcommand that touches the hub's state reads, as flags.
///
/// Settings come from, lowest to highest precedence: built-in defaults, the JSON config
/// file, `TAXI_HUB_*` environment variables, and these flags.
struct HubOptions: ParsableArguments {
    @Option(help: "Address to listen on.") var host: String?
    @Option(help: "Port to listen on (0 picks a free one).") var port: Int?
    @Option(name: .customLong("data-dir"), help: "Folder of the embedded store and the generated JWT secret.") var dataDir: String?
    @Option(name: .customLong("media-dir"), help: "Folder for uploaded photos, served at /media/.") var mediaDir: String?
    @Option(name: .customLong("database-url"), help: "PostgreSQL URL (postgres://user:pass@host:port/db); default: SQLite in the data folder.")
    var databaseURL: String?
    @Option(name: .customLong("nats-url"), help: "NATS server(s), comma separated (nats://host:4222): makes this hub one node of a cluster (needs --database-url and --node-id).")
    var natsURL: String?
    @Option(name: .customLong("node-id"), help: "This node's name in a cluster: unique, stable across restarts (a-z, 0-9, -).")
    var nodeID: String?
    @Option(name: .customLong("cluster-lease"), help: "Seconds a cluster node's lease on its trips lasts without renewal.")
    var clusterLease: Double?
    @Option(name: .customLong("config"), help: "JSON configuration file (default: config/taxi-hub.json when present).")
    var configFile: String?
    @Option(name: .customLong("snapshot-interval"), help: "Seconds between snapshots to the store.") var snapshotInterval: Double?
    @Option(name: .customLong("event-loops"), help: "Event-loop threads serving the sockets (default: one per core).")
    var eventLoops: Int?
    @Option(name: .customLong("max-connections"), help: "Most WebSockets open at once.") var maxConnections: Int?
    @Option(name: .customLong("max-connections-per-user"), help: "Most WebSockets one user may hold open.")
    var maxConnectionsPerUser: Int?
    @Option(name: .customLong("max-frame-size"), help: "Largest client message in bytes.") var maxFrameSize: Int?
    @Option(name: .customLong("outbound-queue-length"), help: "Events queued for one client before it is dropped.")
    var outboundQueueLength: Int?
    @Option(name: .customLong("close-grace"), help: "Seconds a client the hub closed has to read its close frame.")
    var closeGrace: Double?
    @Option(name: .customLong("request-head-timeout"), help: "Seconds a client has to send a request head; then 408.")
    var requestHeadTimeout: Double?
    @Option(name: .customLong("request-body-timeout"), help: "Seconds a client has to send a request body after its head; then 408.")
    var requestBodyTimeout: Double?
    @Option(name: .customLong("keep-alive-timeout"), help: "Seconds an idle keep-alive connection is kept open.")
    var keepAliveTimeout: Double?
    @Option(name: .customLong("bcrypt-cost"), help: "bcrypt work factor for password hashes (4-31).") var bcryptCost: Int?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?
    @Option(name: .customLong("location-rate-limit"), help: "update.location messages per second per connection.")
    var locationRateLimit: Double?
    @Option(name: .customLong("message-rate-limit"), help: "Messages besides locations per second per connection.")
    var messageRateLimit: Double?
    @Option(name: .customLong("cell-size"), help: "Edge of a geo cell in metres.") var cellSize: Double?
    @Option(name: .customLong("dispatch-radius"), help: "First radius in metres searched for drivers near a pick-up.")
    var dispatchRadius: Double?
    @Option(name: .customLong("dispatch-max-radius"), help: "Largest radius in metres searched for drivers.")
    var dispatchMaxRadius: Double?
    @Option(name: .customLong("dispatch-drivers"), help: "Drivers alerted of a trip with a pick-up location.")
    var dispatchDrivers: Int?
    @Option(name: .customLong("trip-history-length"), help: "Events per trip kept for resume.") var tripHistoryLength: Int?
    @Option(name: .customLong("login-rate-per-address"), help: "Log-in attempts per minute from one client address.")
    var loginRatePerAddress: Double?
    @Option(name: .customLong("login-rate-per-username"), help: "Failed log-ins per minute for one username.")
    var loginRatePerUsername: Double?
    @Option(name: .customLong("max-password-checks"), help: "bcrypt hashes queued or running at once; more get 503.")
    var maxPasswordChecks: Int?
    @Option(name: .customLong("password-hashing-class"), help: "idle: bcrypt only on cycles GPS leaves (default); normal: NIO's thread pool.")
    var passwordHashingClass: String?
    @Option(name: .customLong("cors-origins"), help: "Comma-separated origins whose pages may call the API (default: same origin only).")
    var corsOrigins: String?
    @Option(name: .customLong("tile-url"), help: "Street tiles for the browser client's map ({z}/{x}/{y} template; empty: plain map).")
    var tileURL: String?
    @Option(name: .customLong("web-root"), help: "Folder of the browser client's files (default: the copy built in).")
    var webRoot: String?
    @Option(name: .customLong("operator-feed-interval"), help: "Seconds between the driver positions sent to operators.")
    var operatorFeedInterval: Double?
    @Flag(name: .customLong("bench-routes"), help: "Serve the load generator's /bench/ routes (tokens without passwords: never on a public hub).")
    var benchRoutes = false

    /// The resolved configuration, with logging bootstrapped at its level.
    func resolve() async throws -> HubConfiguration {
        let reader = try await Self.configReader(flags: flagValues, environment: ProcessInfo.processInfo.environment, file: configFile)
        do {
            return try HubConfiguration(reader: reader)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    /// The flags that were given, as configuration keys.
    var flagValues: [AbsoluteConfigKey: ConfigValue] {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        func set(_ key: String, _ content: ConfigContent?) {
            if let content { values[AbsoluteConfigKey([key])] = ConfigValue(content, isSecret: false) }
        }
        set("host", host.map(ConfigContent.string))
        set("port", port.map(ConfigContent.int))
        set("dataDir", dataDir.map(ConfigContent.string))
        set("mediaDir", mediaDir.map(ConfigContent.string))
        set("databaseUrl", databaseURL.map(ConfigContent.string))
        set("natsUrl", natsURL.map(ConfigContent.string))
        set("nodeId", nodeID.map(ConfigContent.string))
        set("clusterLease", clusterLease.map(ConfigContent.double))
        set("snapshotInterval", snapshotInterval.map(ConfigContent.double))
        set("eventLoops", eventLoops.map(ConfigContent.int))
        set("maxConnections", maxConnections.map(ConfigContent.int))
        set("maxConnectionsPerUser", maxConnectionsPerUser.map(ConfigContent.int))
        set("maxFrameSize", maxFrameSize.map(ConfigContent.int))
        set("outboundQueueLength", outboundQueueLength.map(ConfigContent.int))
        set("closeGrace", closeGrace.map(ConfigContent.double))
        set("requestHeadTimeout", requestHeadTimeout.map(ConfigContent.double))
        set("requestBodyTimeout", requestBodyTimeout.map(ConfigContent.double))
        set("keepAliveTimeout", keepAliveTimeout.map(ConfigContent.double))
        set("bcryptCost", bcryptCost.map(ConfigContent.int))
        set("logLevel", logLevel.map(ConfigContent.string))
        set("locationRateLimit", locationRateLimit.map(ConfigContent.double))
        set("messageRateLimit", messageRateLimit.map(ConfigContent.double))
        set("cellSize", cellSize.map(ConfigContent.double))
        set("dispatchRadius", dispatchRadius.map(ConfigContent.double))
        set("dispatchMaxRadius", dispatchMaxRadius.map(ConfigContent.double))
        set("dispatchDrivers", dispatchDrivers.map(ConfigContent.int))
        set("tripHistoryLength", tripHistoryLength.map(ConfigContent.int))
        set("benchRoutes", benchRoutes ? .bool(true) : nil)
        set("loginRatePerAddress", loginRatePerAddress.map(ConfigContent.double))
        set("loginRatePerUsername", loginRatePerUsername.map(ConfigContent.double))
        set("maxPasswordChecks", maxPasswordChecks.map(ConfigContent.int))
        set("passwordHashingClass", passwordHashingClass.map(ConfigContent.string))
        set("corsOrigins", corsOrigins.map(ConfigContent.string))
        set("tileUrl", tileURL.map(ConfigContent.string))
        set("webRoot", webRoot.map(ConfigContent.string))
        set("operatorFeedInterval", operatorFeedInterval.map(ConfigContent.double))
        return values
    }

    /// Flags over `TAXI_HUB_*` environment variables over the config file over defaults in code.
    static func configReader(
        flags: [AbsoluteConfigKey: ConfigValue], environment: [String: String], file: String?
    ) async throws -> ConfigReader {
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "flags", values: flags),
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: .specific(["TAXI_HUB_JWT_SECRET"]))
                .prefixKeys(with: "taxiHub"),
        ]
        let path = file ?? "config/taxi-hub.json"
        guard file == nil || FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("Configuration file \(path) does not exist.")
        }
        providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(path), allowMissing: true))
        return ConfigReader(providers: providers)
    }
}
