import ArgumentParser
import Logging
import Web

/// `taxi-hub serve`: runs the hub until SIGINT or SIGTERM, then stops gracefully.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the hub (the default).",
        discussion: """
            Settings come from, lowest to highest precedence: built-in defaults, the JSON config file, \
            TAXI_HUB_* environment variables (e.g. TAXI_HUB_PORT, TAXI_HUB_JWT_SECRET, TAXI_HUB_DATABASE_URL), \
            and these flags.
            """
    )

    @OptionGroup var options: HubOptions

    func run() async throws {
        let configuration = try await options.resolve()
        let logger = CommandLogging.bootstrap(level: configuration.logLevel)
        try await buildHub(configuration: configuration, logger: logger, cluster: configuration.clusterWiring(logger: logger)).run()
    }
}
