import ArgumentParser

/// `hub-bench`: benchmarks of the hub's own code, in process, without a network or a database.
@main
struct HubBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub-bench",
        abstract: "Benchmarks of the hub's domain code, in process.",
        subcommands: [NearbyBench.self, LocationsBench.self]
    )
}
