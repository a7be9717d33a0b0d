import ArgumentParser
import Web

/// `taxi-hub migrate`: applies the store's schema migrations and exits.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the store's schema migrations (PostgreSQL with --database-url, else SQLite in the data folder)."
    )

    @OptionGroup var options: HubOptions

    func run() async throws {
        let configuration = try await options.resolve()
        let logger = CommandLogging.bootstrap(level: configuration.logLevel)
        try await migrateStore(configuration: configuration, logger: logger)
    }
}
