import ArgumentParser
import BenchSupport
import Foundation
import LoadTest

/// `taxi-hub loadtest`: drives a running hub with simulated drivers and riders and reports latency,
/// throughput, CPU and memory (docs/load-test.md).
struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load a running hub with simulated drivers and riders; report latencies, rates, CPU and memory.",
        discussion: """
            The hub must run with --bench-routes (users and tokens are made through POST /bench/users; \
            --baseline uses the /bench/echo WebSocket), and with --location-rate-limit at or above --gps-hz, \
            or its per-connection rate limit answers fixes with rate_limited (the tool warns). \
            Progress goes to stderr once a second, the results as Markdown to stdout, and to --json FILE.
            Example: taxi-hub loadtest --url http://127.0.0.1:8080 --drivers 2000 --riders 500 --gps-hz 5 --duration 30 --json out.json
            A steady stream of trip changes inside the window: --trip-rate 30 --trip-speed 30 --trip-blocks 1
            Offer rounds: --decline-share 0.3 --ignore-share 0.2 --unserved-share 0.1 (start the hub with --offer-timeout 5 --dispatch-timeout 15)
            Several hubs (the nodes of a cluster): --url http://127.0.0.1:8001 --url http://127.0.0.1:8002 --url http://127.0.0.1:8003
            """
    )

    @Option(
        help: """
            The hub, http://HOST:PORT (default http://127.0.0.1:8000). Give it once per node to spread the clients over several hubs (client i starts on \
            URL i mod n; a client whose socket closes or fails tries the next URL, wrapping).
            """
    )
    var url: [String] = []
    @Option(help: "Simulated drivers (default 1000; 0 with --idle alone).") var drivers: Int?
    @Option(help: "Simulated riders (default 100; 0 with --idle alone).") var riders: Int?
    @Option(name: .customLong("gps-hz"), help: "GPS fixes per second per driver.") var gpsHz = 1.0
    @Option(help: "Seconds measured after the warm-up.") var duration = 30.0
    @Option(help: "Seconds of load before measuring; riders' first requests are spread over it.") var warmup = 5.0
    @Flag(help: "Also send the drivers' frames at the same rate to the hub's bare /bench/echo route.") var baseline = false
    @Option(help: "Run the load (and the baseline after it) this many times, alternating; results sum all rounds.")
    var rounds = 1
    @Option(help: "Open and hold this many idle WebSockets and report the hub's memory per connection.") var idle = 0
    @Option(name: .customLong("idle-hold"), help: "Seconds the idle connections are held before the memory is read.")
    var idleHold = 5.0
    @Option(
        name: .customLong("source-addresses"),
        help: "Local addresses to bind connections to, round robin, e.g. 127.0.0.2-127.0.0.20 (default: the kernel chooses)."
    )
    var sourceAddresses: String?
    @Option(name: .customLong("connections-per-address"), help: "Most connections on one source address.")
    var connectionsPerAddress = 25_000
    @Option(name: .customLong("open-concurrency"), help: "Connection attempts in flight at once.") var openConcurrency = 200
    @Option(help: "Mean driving speed, m/s; each driver keeps its own, 70–130 % of it (at most 100).") var speed = 10.0
    @Option(name: .customLong("trip-blocks"), help: "Blocks (200 m) from pick-up to drop-off.") var tripBlocks = 3
    @Option(name: .customLong("rider-pause"), help: "Seconds between a trip's end and the rider's next request (without --trip-rate).")
    var riderPause = 2.0
    @Option(
        name: .customLong("trip-rate"),
        help: """
            Trip requests per second, all riders together, on a fixed schedule from the start (warm-up included): each goes to the \
            next rider without a trip, and its alert latency counts from its due time (0: each rider requests again --rider-pause \
            after its trip ends).
            """
    )
    var tripRate = 0.0
    @Option(name: .customLong("trip-speed"), help: "Metres per second drivers drive while on a trip (0: each driver's own speed; at most 100).")
    var tripSpeed = 0.0
    @Option(name: .customLong("accept-timeout"), help: "Seconds before a rider cancels a trip nobody accepted.")
    var acceptTimeout = 10.0
    @Option(
        name: .customLong("decline-share"),
        help: "Share of the offers a driver declines at once with decline.trip (0 to 1), each offer drawn on its own."
    )
    var declineShare = 0.0
    @Option(
        name: .customLong("ignore-share"),
        help: "Share of the offers a driver lets expire, answering nothing (0 to 1; with --decline-share at most 1)."
    )
    var ignoreShare = 0.0
    @Option(
        name: .customLong("unserved-share"),
        help: """
            Share of the trip requests placed where no driver is (100 km north of the city), so they end no_driver_found after the \
            hub's dispatchTimeout. Shorten that on the hub (serve --dispatch-timeout 15) to see them end inside the window.
            """
    )
    var unservedShare = 0.0
    @Option(
        name: .customLong("unserved-wait"),
        help: "Seconds a rider waits for an unserved request to end no_driver_found before it cancels it itself (counted); above the hub's dispatchTimeout."
    )
    var unservedWait = 130.0
    @Option(help: "Event-loop threads of the generator.") var threads = 2
    @Option(name: .customLong("user-prefix"), help: "Users are PREFIX-driver-N, PREFIX-rider-N (created or reused).")
    var userPrefix = "loadtest"
    @Option(help: "Seed of the simulation's random choices.") var seed: UInt64 = 1
    @Option(help: "Log-ins per second while the log-in flood is on (0: none); start the hub with a high --login-rate-per-address.")
    var loginRate = 0.0
    @Option(help: "Accounts the log-in flood signs up (or reuses) and logs in, round robin.") var loginAccounts = 20
    @Option(help: "Seconds the log-in flood stays on, then off, alternating through the window.") var loginPeriod = 5.0
    @Option(help: "Also write the results as JSON to this file.") var json: String?
    @Option(name: .customLong("drop-every"), help: "Every this many seconds, close --drop-share of the open sockets abruptly (0: never).")
    var dropEvery = 0.0
    @Option(name: .customLong("drop-share"), help: "Share of the open sockets each drop closes, mostly of users mid-trip.")
    var dropShare = 0.05
    @Option(help: "Write every acknowledged trip event and location, a line a second, and the drops as JSON lines (docs/soak.md).")
    var record: String?

    func run() async throws {
        var settings = LoadTestSettings()
        if !url.isEmpty { settings.urls = url }
        settings.drivers = drivers ?? (idle > 0 ? 0 : 1_000)
        settings.riders = riders ?? (idle > 0 && drivers == nil ? 0 : 100)
        settings.gpsHz = gpsHz
        settings.duration = duration
        settings.warmup = warmup
        settings.baseline = baseline
        settings.rounds = rounds
        settings.idle = idle
        settings.idleHold = idleHold
        settings.connectionsPerAddress = connectionsPerAddress
        settings.openConcurrency = openConcurrency
        settings.speed = speed
        settings.tripBlocks = tripBlocks
        settings.riderPause = riderPause
        settings.tripRate = tripRate
        settings.tripSpeed = tripSpeed
        settings.acceptTimeout = acceptTimeout
        settings.declineShare = declineShare
        settings.ignoreShare = ignoreShare
        settings.unservedShare = unservedShare
        settings.unservedWait = unservedWait
        settings.threads = threads
        settings.userPrefix = userPrefix
        settings.seed = seed
        settings.loginRate = loginRate
        settings.loginAccounts = loginAccounts
        settings.loginPeriod = loginPeriod
        settings.dropEvery = dropEvery
        settings.dropShare = dropShare
        settings.recordPath = record
        do {
            settings.sourceAddresses = try sourceAddresses.map(LoadTestSettings.sourceAddresses) ?? []
        } catch {
            throw ValidationError("\(error)")
        }
        if let problem = settings.problems.first { throw ValidationError(problem) }
        let progress = ProgressLog("loadtest")
        let report = try await LoadTest.run(settings, log: progress.log)
        print(report.markdown)
        if let json {
            try report.jsonData().write(to: URL(fileURLWithPath: json))
            progress.log("wrote \(json)")
        }
    }
}
