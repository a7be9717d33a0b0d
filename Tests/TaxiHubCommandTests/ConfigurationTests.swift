import ArgumentParser
import Cluster
import Foundation
import Logging
import Testing

@testable import Web

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
        return try await options.configuration(environment: environment)
    }

    /// The repository's copy of `path`.
    static func repositoryFile(_ path: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../\(path)").standardized
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
        let file = Self.repositoryFile("config/taxi-hub.json").path
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

    @Test("one setting given by flag, environment and file: the flag wins, then the environment, then the file", arguments: [
        ("port", "--port", "TAXI_HUB_PORT"), ("maxConnections", "--max-connections", "TAXI_HUB_MAX_CONNECTIONS"),
        ("clusterLease", "--cluster-lease", "TAXI_HUB_CLUSTER_LEASE"), ("snapshotInterval", "--snapshot-interval", "TAXI_HUB_SNAPSHOT_INTERVAL"),
    ])
    func precedenceOfOneSetting(key: String, flag: String, variable: String) async throws {
        // Read back through the setting's own definition, whatever its type.
        func value(_ configuration: HubConfiguration) -> String? {
            Mirror(reflecting: configuration).children.compactMap { $0.value as? any SettingReflection }
                .first { $0.definition.key == key }?.shownValue
        }
        try await Self.withFile(#"{"\#(key)": 7}"#) { path in
            let all = try await Self.resolve([flag, "9"], environment: [variable: "8"], file: path)
            let environmentAndFile = try await Self.resolve([], environment: [variable: "8"], file: path)
            let file = try await Self.resolve([], file: path)
            #expect(value(all) == "9")
            #expect(value(environmentAndFile) == "8")
            #expect(value(file) == "7")
        }
        let none = try await Self.resolve([])
        #expect(value(none) == value(HubConfiguration()))
    }

    @Test("--help lists every setting with its flag, variable and default", arguments: ["serve", "migrate", "user create"])
    func helpListsEverySetting(command: String) throws {
        let type: any ParsableCommand.Type =
            switch command {
            case "serve": Serve.self
            case "migrate": Migrate.self
            default: CreateUser.self
            }
        let help = TaxiHub.helpMessage(for: type, columns: 80)
        #expect(help.split(separator: "\n").allSatisfy { $0.count <= 80 || $0.hasPrefix("USAGE:") }, "the list is not rewrapped")
        // Wrapped, the help reads the same with its line breaks as spaces.
        func words(_ text: some StringProtocol) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let text = words(help)
        for setting in HubConfiguration.settings {
            let variable = HubOptions.environmentVariable(for: setting)
            #expect(text.contains(variable), "\(setting.key)")
            if let flag = HubOptions.flag(for: setting) {
                #expect(text.contains(words("\(flag) \(setting.placeholder)")), "\(setting.key)")
            }
            #expect(text.contains(words(setting.help)), "\(setting.key)")
            if let value = setting.defaultValue { #expect(text.contains("default: \(value.isEmpty ? "empty" : value)"), "\(setting.key)") }
        }
        #expect(text.contains("--config <config>"))
    }

    @Test("every existing flag keeps its name", arguments: [
        "--host", "--port", "--data-dir", "--media-dir", "--database-url", "--nats-url", "--node-id", "--cluster-lease", "--snapshot-interval",
        "--event-loops", "--max-connections", "--max-connections-per-user", "--max-frame-size", "--outbound-queue-length", "--close-grace",
        "--request-head-timeout", "--request-body-timeout", "--keep-alive-timeout", "--bcrypt-cost", "--log-level", "--location-rate-limit",
        "--message-rate-limit", "--cell-size", "--dispatch-radius", "--dispatch-max-radius", "--dispatch-drivers", "--trip-history-length",
        "--login-rate-per-address", "--login-rate-per-username", "--max-password-checks", "--password-hashing-class", "--cors-origins",
        "--tile-url", "--web-root", "--operator-feed-interval", "--bench-routes",
    ])
    func flagNames(flag: String) {
        #expect(HubConfiguration.settings.contains { HubOptions.flag(for: $0) == flag })
    }

    @Test("every setting has its own key, and the JWT secret no flag")
    func keysAreUnique() {
        let keys = HubConfiguration.settings.map(\.key)
        #expect(Set(keys).count == keys.count)
        #expect(Mirror(reflecting: HubConfiguration()).children.count == keys.count, "every stored property is a @Setting")
        #expect(HubConfiguration.settings.filter { !$0.hasFlag }.map(\.key) == ["jwtSecret"])
    }

    @Test("an unknown flag, a flag without its value, or a stray value is refused before the start", arguments: [
        (["--prot", "8080"], "--prot"),
        (["--jwt-secret", "0123456789abcdef0123456789abcdef"], "TAXI_HUB_JWT_SECRET"),
        (["-p", "8080"], "-p"),
        (["--port"], "--port"),
        (["--port", "--host", "0.0.0.0"], "--port"),
        (["--port", "1", "2"], "'2'"),
        (["--bench-routes", "yes"], "'yes'"),
    ])
    func refusesUnknownFlags(arguments: [String], named: String) {
        #expect(throws: (any Error).self) { try HubOptions.parse(arguments) }
        do {
            _ = try HubOptions.parse(arguments)
        } catch {
            #expect(HubOptions.message(for: error).contains(named), "\(HubOptions.message(for: error))")
        }
    }

    @Test("a flag, variable or file value that is not of the setting's type is refused, naming the setting and the source")
    func refusesValuesOfTheWrongType() async throws {
        let flag = await #expect(throws: ConfigurationError.self) { try await Self.resolve(["--port", "eighty"]) }
        #expect(flag?.description.contains("port must be a whole number") == true && flag?.description.contains("--port") == true, "\(String(describing: flag))")
        let variable = await #expect(throws: ConfigurationError.self) { try await Self.resolve([], environment: ["TAXI_HUB_CELL_SIZE": "big"]) }
        #expect(variable?.description.contains("cellSize") == true && variable?.description.contains("TAXI_HUB_CELL_SIZE") == true)
        try await Self.withFile(#"{"maxFrameSize": "large"}"#) { path in
            let file = await #expect(throws: ConfigurationError.self) { try await Self.resolve([], file: path) }
            #expect(file?.description.contains("maxFrameSize") == true)
        }
        let fraction = await #expect(throws: ConfigurationError.self) { try await Self.resolve(["--bcrypt-cost", "4.5"]) }
        #expect(fraction?.description.contains("bcryptCost") == true)
        // Forms the flags' provider reads: `--name=value`, a bare on/off flag, an empty value.
        let forms = try await Self.resolve(["--port=9", "--bench-routes", "--database-url", ""])
        #expect(forms.port == 9 && forms.benchRoutes && forms.databaseURL == nil)
        let again = try await Self.resolve(["--port", "1", "--cors-origins", "https://a.example", "--port=2", "--cors-origins", "https://b.example", "--bench-routes", "false"])
        #expect(again.port == 2 && again.corsOrigins == ["https://b.example"] && !again.benchRoutes, "the last one given wins")
        try await Self.withFile(#"{"corsOrigins": ["https://a.example", "https://b.example"], "natsUrl": []}"#) { path in
            let lists = try await Self.resolve([], file: path)
            #expect(lists.corsOrigins == ["https://a.example", "https://b.example"] && lists.natsURLs.isEmpty, "a list in the file may be a JSON array")
        }
        #expect(try await Self.resolve([], environment: ["TAXI_HUB_EVENT_LOOPS": ""]).eventLoops == nil, "empty: unset")
        await #expect(throws: ConfigurationError.self, "empty is no number") { try await Self.resolve(["--port", ""]) }
        let emptySecret = try await Self.resolve([], environment: ["TAXI_HUB_JWT_SECRET": ""])
        #expect(emptySecret.jwtSecret == "", "kept, so the start refuses it as too short; not taken for unset")
        // The flags' provider splits values at commas; a text setting gets its value back whole.
        let commas = try await Self.resolve(["--database-url", "postgres://a:1,b:2/taxihub?x=1,2", "--tile-url=https://t/{z}/{x}/{y}.png?k=a,b"])
        #expect(commas.databaseURL == "postgres://a:1,b:2/taxihub?x=1,2")
        #expect(commas.tileURL == "https://t/{z}/{x}/{y}.png?k=a,b")
        #expect(try await Self.resolve([], environment: ["TAXI_HUB_BENCH_ROUTES": "1"]).benchRoutes)
    }

    /// The config file's values, by key, as settings show them.
    @Test("bench routes are off unless the flag, the environment or the file turns them on")
    func benchRoutesKnob() async throws {
        #expect(try await Self.resolve([]).benchRoutes == false)
        #expect(try await Self.resolve(["--bench-routes"]).benchRoutes)
        #expect(try await Self.resolve([], environment: ["TAXI_HUB_BENCH_ROUTES": "true"]).benchRoutes)
    }

    static func shippedValues() throws -> [String: String] {
        enum Value: Decodable {
            case text(String), number(Double), flag(Bool)
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let flag = try? container.decode(Bool.self) { self = .flag(flag) }
                else if let number = try? container.decode(Double.self) { self = .number(number) }
                else { self = .text(try container.decode(String.self)) }
            }
            var shown: String {
                switch self {
                case .text(let text): text
                case .number(let number): number.settingDescription
                case .flag(let flag): String(flag)
                }
            }
        }
        let data = try Data(contentsOf: repositoryFile("config/taxi-hub.json"))
        return try JSONDecoder().decode([String: Value].self, from: data).mapValues(\.shown)
    }

    @Test("config/taxi-hub.json holds every setting that has a default, with that default, and nothing else")
    func shippedFileMatchesTheDeclarations() throws {
        let values = try Self.shippedValues()
        let settings = HubConfiguration.settings
        #expect(Set(values.keys).subtracting(settings.map(\.key)).isEmpty, "keys no setting declares")
        for setting in settings {
            #expect(values[setting.key] == setting.defaultValue, "\(setting.key)")
        }
    }

    @Test("docs/configuration.md's table lists every setting with its variable, flag and default")
    func docsTableMatchesTheDeclarations() throws {
        let text = try String(contentsOf: Self.repositoryFile("docs/configuration.md"), encoding: .utf8)
        func plain(_ cell: Substring) -> String { cell.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "") }
        var rows: [String: [String]] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().map(plain)
            rows[cells[0]] = cells
        }
        let settings = HubConfiguration.settings
        #expect(Set(rows.keys) == Set(settings.map(\.key)))
        for setting in settings {
            guard let row = rows[setting.key] else { continue }
            #expect(row[1] == HubOptions.environmentVariable(for: setting), "\(setting.key)")
            #expect(row[2] == (HubOptions.flag(for: setting) ?? "—"), "\(setting.key)")
            let documented: String? =
                switch row[3] {
                case "unset": nil
                case "empty": ""
                case let shown: Double(shown).map(\.settingDescription) ?? shown
                }
            #expect(documented == setting.defaultValue, "\(setting.key)")
        }
    }
}
