import ArgumentParser

/// `taxi-hub`: the realtime taxi hub. `serve` is the default subcommand.
@main
struct TaxiHub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "taxi-hub",
        abstract: "A realtime ride-hailing hub: riders request trips, drivers accept, state streams live.",
        subcommands: [Serve.self, Migrate.self, UserCommand.self, LoadTestCommand.self, SimulateCommand.self],
        defaultSubcommand: Serve.self
    )
}
