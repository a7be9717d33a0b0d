import ArgumentParser
import Cluster
import Foundation
import Logging
import Testing
import Web

@testable import TaxiHubCommand
import TestSupport

/// Settings resolve as defaults < config file < `TAXI_HUB_*` environment < flags, and
/// unusable values stop the start with a clear message.
@Suite("Configuration", MachineLoad.shared)
struct ConfigurationTests {
    static func withFile(_ json: String, _ body: (String) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-config-\(UUID().uuidString).json").path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await body(path)
    }

    static func resolve(_ arguments: [String], environment: [String: String] = [:], file: String? = nil) async throws -> HubConfiguration {
        let options = try HubOptions.parse(arguments + (file.map { ["--config", $0] } ?? []))
        return try HubConfiguration(reader: try await HubOptions.configReader(flags: options.flagValues, environment: environment, file: file))
    }

    @Test("flags beat the environment, which beats the file, which beats the defaults")
    func precedence() async throws {
        try await Self.withFile(#"{"port": 1111, "maxFrameSize": 2048, "bcryptCost": 5, "snapshotInterval": 0.5}"#) { path in
            let configuration = try await Self.resolve(
                ["--port", "3333"], environment: ["TAXI_HUB_PORT": "2222", "TAXI_HUB_BCRYPT_COST": "6", "TAXI_HUB_JWT_SECRET": "s"],
                file: path
            )
            #expect(configuration.port == 3333)
            #expect(configuration.bcryptCost == 6)
            #expect(configuration.maxFrameSize == 2048)
            #expect(configuration.snapshotInterval == .milliseconds(500))
            #expect(configuration.jwtSecret == "s")
            #expect(configuration.host == HubConfiguration().host)
            #expect(configuration.outboundQueueLength == HubConfiguration().outboundQueueLength)
            #expect(configuration.eventLoops == nil, "unset: one loop per core")
        }
        let loops = try await Self.resolve([], environment: ["TAXI_HUB_EVENT_LOOPS": "1"], file: nil)
        #expect(loops.eventLoops == 1)
        let checks = try await Self.resolve([], environment: ["TAXI_HUB_MAX_PASSWORD_CHECKS": "8"], file: nil)
        #expect(checks.maxPasswordChecks == 8)
        #expect(try await Self.resolve(["--max-password-checks", "3"]).maxPasswordChecks == 3)
    }

    @Test("the shipped config file holds the defaults")
    func shippedFile() async throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config/taxi-hub.json").path
        let configuration = try await Self.resolve([], file: file)
        let defaults = HubConfiguration()
        #expect(configuration.port == defaults.port)
        #expect(configuration.snapshotInterval == defaults.snapshotInterval)
        #expect(configuration.bcryptCost == defaults.bcryptCost)
        #expect(configuration.maxFrameSize == defaults.maxFrameSize)
        #expect(configuration.outboundQueueLength == defaults.outboundQueueLength)
        #expect(configuration.closeGrace == defaults.closeGrace)
        #expect(configuration.requestHeadTimeout == defaults.requestHeadTimeout)
        #expect(configuration.requestBodyTimeout == defaults.requestBodyTimeout)
        #expect(configuration.keepAliveTimeout == defaults.keepAliveTimeout)
        #expect(configuration.tileURL == defaults.tileURL)
        #expect(configuration.operatorFeedInterval == defaults.operatorFeedInterval)
        #expect(configuration.maxPasswordChecks == defaults.maxPasswordChecks)
        #expect(configuration.passwordHashingClass == defaults.passwordHashingClass)
    }

    @Test("clients on this machine reach a hub on a wildcard address over loopback", arguments: [
        ("127.0.0.1", "http://127.0.0.1:8000"), ("0.0.0.0", "http://127.0.0.1:8000"), ("::", "http://[::1]:8000"),
        ("::1", "http://[::1]:8000"), ("hub.local", "http://hub.local:8000"),
    ])
    func localBaseURL(host: String, url: String) {
        var configuration = HubConfiguration()
        configuration.host = host
        #expect(configuration.localBaseURL() == url)
    }

    @Test("HTTP timeouts: 10 s head, 60 s body, 60 s keep-alive unless the environment or a flag says otherwise")
    func httpTimeouts() async throws {
        let defaults = try await Self.resolve([])
        #expect(defaults.requestHeadTimeout == .seconds(10))
        #expect(defaults.requestBodyTimeout == .seconds(60))
        #expect(defaults.keepAliveTimeout == .seconds(60))
        let set = try await Self.resolve(
            ["--keep-alive-timeout", "75"], environment: ["TAXI_HUB_REQUEST_HEAD_TIMEOUT": "2.5", "TAXI_HUB_REQUEST_BODY_TIMEOUT": "300"]
        )
        #expect(set.requestHeadTimeout == .milliseconds(2500))
        #expect(set.requestBodyTimeout == .seconds(300))
        #expect(set.keepAliveTimeout == .seconds(75))
    }

    @Test("cluster mode: off without natsUrl; with it, the node's settings")
    func clusterSettings() async throws {
        #expect(try await Self.resolve([]).clusterSettings == nil)
        let node = try await Self.resolve(
            ["--nats-url", "nats://10.0.0.1:4222, nats://10.0.0.2:4222", "--database-url", "postgres:///taxihub"],
            environment: ["TAXI_HUB_NODE_ID": "node-7", "TAXI_HUB_CLUSTER_LEASE": "2.5"]
        )
        let settings = try #require(node.clusterSettings)
        #expect(settings.nodeID == "node-7")
        #expect(settings.natsURLs == ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"])
        #expect(settings.lease == .milliseconds(2500))
    }

    @Test("the browser client's settings: tile URL (empty allowed), web root, operator feed interval")
    func clientSettings() async throws {
        let plain = try await Self.resolve(["--tile-url", ""])
        #expect(plain.tileURL == "")
        let own = try await Self.resolve([], environment: ["TAXI_HUB_TILE_URL": "http://tiles.local/{z}/{x}/{y}.png"])
        #expect(own.tileURL == "http://tiles.local/{z}/{x}/{y}.png")
        let cors = try await Self.resolve([], environment: ["TAXI_HUB_CORS_ORIGINS": "https://a.example, http://localhost:3000"])
        #expect(cors.corsOrigins == ["https://a.example", "http://localhost:3000"])
        #expect(try await Self.resolve([]).corsOrigins.isEmpty)
        let feed = try await Self.resolve(["--operator-feed-interval", "0.5"])
        #expect(feed.operatorFeedInterval == .milliseconds(500))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-webroot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("<!doctype html>".utf8).write(to: folder.appendingPathComponent("index.html"))
        #expect(try await Self.resolve(["--web-root", folder.path]).webRoot == folder.path)
    }

    @Test("unusable values are refused with a message naming the setting", arguments: [
        (["--bcrypt-cost", "99"], "bcryptCost"),
        (["--snapshot-interval", "0"], "snapshotInterval"),
        (["--log-level", "loud"], "logLevel"),
        (["--max-connections", "0"], "maxConnections"),
        (["--event-loops", "0"], "eventLoops"),
        (["--event-loops", "257"], "eventLoops"),
        (["--outbound-queue-length", "0"], "outboundQueueLength"),
        (["--close-grace", "0"], "closeGrace"),
        (["--close-grace", "nan"], "closeGrace"),
        (["--request-head-timeout", "0"], "requestHeadTimeout"),
        (["--request-head-timeout", "0.05"], "requestHeadTimeout"),
        (["--request-body-timeout", "3601"], "requestBodyTimeout"),
        (["--keep-alive-timeout", "nan"], "keepAliveTimeout"),
        (["--keep-alive-timeout", "3601"], "keepAliveTimeout"),
        (["--request-body-timeout", "0"], "requestBodyTimeout"),
        (["--tile-url", "https://tiles.example/{z}.png"], "tileUrl"),
        (["--web-root", "/nonexistent-taxihub-client"], "webRoot"),
        (["--operator-feed-interval", "0"], "operatorFeedInterval"),
        (["--operator-feed-interval", "61"], "operatorFeedInterval"),
        (["--login-rate-per-address", "0"], "loginRatePerAddress"),
        (["--login-rate-per-address", "nan"], "loginRatePerAddress"),
        (["--login-rate-per-username", "0"], "loginRatePerUsername"),
        (["--max-password-checks", "0"], "maxPasswordChecks"),
        (["--password-hashing-class", "fast"], "passwordHashingClass"),
        (["--cors-origins", "app.example.com"], "corsOrigins"),
        (["--cors-origins", "https://app.example.com/"], "corsOrigins"),
        (["--nats-url", "nats://127.0.0.1:4222", "--node-id", "a"], "databaseUrl"),
        (["--nats-url", "nats://127.0.0.1:4222", "--database-url", "postgres:///x"], "nodeId"),
        (["--nats-url", "nats://127.0.0.1:4222", "--database-url", "postgres:///x", "--node-id", "Node A"], "nodeId"),
        (["--nats-url", "127.0.0.1:4222", "--database-url", "postgres:///x", "--node-id", "a"], "natsUrl"),
        (["--cluster-lease", "0.1"], "clusterLease"),
    ])
    func refusesBadValues(arguments: [String], setting: String) async throws {
        let error = await #expect(throws: ConfigurationError.self) { try await Self.resolve(arguments) }
        #expect(error?.description.contains(setting) == true)
    }

    @Test("a missing config file named with --config is an error")
    func missingFile() async throws {
        await #expect(throws: ValidationError.self) { try await Self.resolve([], file: "/nonexistent/taxi-hub.json") }
    }

    @Test("a JWT secret shorter than 32 bytes stops the start")
    func shortSecret() async throws {
        var configuration = HubConfiguration()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-secret-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        configuration.dataDirectory = directory.path
        configuration.mediaDirectory = directory.appendingPathComponent("media").path
        configuration.jwtSecret = "too-short"
        let error = await #expect(throws: ConfigurationError.self) {
            _ = try await buildHub(configuration: configuration, logger: Logger(label: "test"))
        }
        #expect(error?.description.contains("32 bytes") == true)
    }
}
