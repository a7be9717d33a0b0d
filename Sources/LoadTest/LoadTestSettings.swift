/// What one load test run does; `taxi-hub loadtest` fills it from its flags.
public struct LoadTestSettings: Sendable {
    /// The hubs' base URLs, `http://HOST:PORT` (`--url`, once per hub): one hub, or the nodes
    /// of a cluster. Client `i` starts on `urls[i % urls.count]`, and a client whose socket
    /// closes or fails to open tries the next URL in the list (wrapping).
    public var urls = ["http://127.0.0.1:8000"]
    /// The first hub; setting it makes it the only one.
    public var url: String {
        get { urls.first ?? "" }
        set { urls = [newValue] }
    }
    public var drivers = 1_000
    public var riders = 100
    /// GPS fixes per second per driver.
    public var gpsHz = 1.0
    /// Seconds measured, after the warm-up.
    public var duration = 30.0
    /// Seconds of load before measuring starts; the riders' first requests are spread over it.
    public var warmup = 5.0
    /// Also run the same frames at the same rate against `/bench/echo`.
    public var baseline = false
    /// Times the load (and the baseline after it) run, alternating; the results sum all rounds,
    /// so a machine whose speed drifts during the run weighs on hub and echo alike.
    public var rounds = 1
    /// Idle connections to open and hold (0: no idle measurement).
    public var idle = 0
    /// Seconds the idle connections are held before the hub's memory is read.
    public var idleHold = 5.0
    /// Local addresses to bind connections to, round robin; empty: the kernel chooses.
    public var sourceAddresses: [String] = []
    /// Most connections bound to one source address.
    public var connectionsPerAddress = 25_000
    /// Connection attempts in flight at once while opening.
    public var openConcurrency = 200
    /// Mean driving speed in metres per second (each driver keeps its own, 70–130 % of it).
    public var speed = 10.0
    /// Blocks (200 m each, along the streets) from pick-up to drop-off.
    public var tripBlocks = 3
    /// Seconds a rider waits between the end of a trip and the next request (without `tripRate`).
    public var riderPause = 2.0
    /// Trip requests per second, all riders together (0: none on a schedule; each rider requests
    /// again `riderPause` after its trip ends, its first request spread over the warm-up). With
    /// a rate, request k is due at start + k / rate from the start of the load (warm-up
    /// included) and goes to the next rider, round robin, that has no trip (none free: counted
    /// as skipped); its `create.trip` → alert latency is measured from that due time (no
    /// coordinated omission). Riders then request only on the schedule, and `riderPause` is unused.
    public var tripRate = 0.0
    /// Metres per second a driver drives while on a trip, to the pick-up and the drop-off (0:
    /// its own speed). Fast trips end soon, so riders are free again within the window.
    public var tripSpeed = 0.0
    /// Seconds after which a rider cancels a trip nobody accepted.
    public var acceptTimeout = 10.0
    /// Share of the offers (docs/protocol.md §3.3) a driver declines at once with `decline.trip`,
    /// and share it lets expire (it answers nothing); the rest it races for as before, when it is
    /// free. Each offer is drawn on its own, from a generator of the driver's own (seeded), so
    /// the drivers' routes stay those of a run without.
    public var declineShare = 0.0
    public var ignoreShare = 0.0
    /// Share of the trip requests placed where no driver is (`CityModel.unservedDistance` north
    /// of the city, beyond any `dispatchMaxRadius` below that), so that they end `CANCELED` with
    /// `no_driver_found` after the hub's `dispatchTimeout`. The rider waits `unservedWait`
    /// seconds for that end before it cancels such a request itself (counted: the hub missed it).
    public var unservedShare = 0.0
    public var unservedWait = 130.0
    /// Event-loop threads of the generator.
    public var threads = 2
    /// Users are `PREFIX-driver-N` and `PREFIX-rider-N`, created (or reused) through `/bench/users`.
    public var userPrefix = "loadtest"
    /// Log-ins per second while the flood is on (0: none). Each is a real `POST /api/log_in/`
    /// of one of `loginAccounts` accounts, switched on and off every `loginPeriod` seconds of
    /// the measured window, so location latency is measured with and without it in one run.
    public var loginRate = 0.0
    public var loginAccounts = 20
    public var loginPeriod = 5.0
    /// Seed of the traffic's random choices.
    public var seed: UInt64 = 1
    /// Seconds between deliberate drops of `dropShare` of the open sockets (0: none).
    public var dropEvery = 0.0
    /// Share of the open sockets each drop closes abruptly, mostly of users mid-trip.
    public var dropShare = 0.05
    /// Write what the hub acknowledged, once a second the load, and the drops to this file as
    /// JSON lines (docs/soak.md, "The load generator's record").
    public var recordPath: String?

    public init() {}

    /// `127.0.0.2-127.0.0.20,127.0.1.1` as the list of addresses it names.
    public static func sourceAddresses(_ text: String) throws -> [String] {
        try SourceAddresses.expand(text)
    }

    /// Problems with these settings, as messages naming the flag; empty when they are usable.
    public var problems: [String] {
        var problems: [String] = []
        if urls.isEmpty { problems.append("--url must name at least one hub.") }
        if drivers < 0 || riders < 0 || idle < 0 { problems.append("--drivers, --riders and --idle must not be negative.") }
        if riders > 0 && drivers == 0 { problems.append("--riders needs drivers to pick up near (--drivers > 0).") }
        if baseline && drivers == 0 { problems.append("--baseline sends the drivers' frames: it needs --drivers > 0.") }
        if !(gpsHz > 0 && gpsHz <= 100) { problems.append("--gps-hz must be in (0, 100].") }
        if !(duration > 0) || warmup < 0 || idleHold < 0 { problems.append("--duration must be positive, --warmup and --idle-hold not negative.") }
        if !(speed > 0 && speed <= 100) { problems.append("--speed must be in (0, 100] m/s (the hub refuses faster fixes).") }
        if !(tripRate >= 0 && tripRate <= 10_000) { problems.append("--trip-rate must be in [0, 10000] per second.") }
        if tripRate > 0 && riders == 0 { problems.append("--trip-rate needs riders (--riders > 0).") }
        if !(tripSpeed >= 0 && tripSpeed <= 100) { problems.append("--trip-speed must be in [0, 100] m/s (0: each driver's own speed).") }
        if !(riderPause >= 0) { problems.append("--rider-pause must not be negative.") }
        if !(0...1).contains(declineShare) || !(0...1).contains(ignoreShare) || !(declineShare + ignoreShare <= 1) {
            problems.append("--decline-share and --ignore-share must be in [0, 1], and together at most 1.")
        }
        if !(0...1).contains(unservedShare) || !(unservedWait > 0) {
            problems.append("--unserved-share must be in [0, 1], --unserved-wait positive.")
        }
        if dropEvery < 0 || !(0...1).contains(dropShare) { problems.append("--drop-every must not be negative, --drop-share must be in [0, 1].") }
        if tripBlocks < 1 || threads < 1 || openConcurrency < 1 || connectionsPerAddress < 1 || rounds < 1 {
            problems.append("--trip-blocks, --threads, --open-concurrency, --connections-per-address and --rounds must be at least 1.")
        }
        if !sourceAddresses.isEmpty, max(drivers + riders, idle + 1) > sourceAddresses.count * connectionsPerAddress {
            problems.append(
                "\(sourceAddresses.count) source addresses × \(connectionsPerAddress) connections are too few; add addresses."
            )
        }
        if !(loginRate >= 0 && loginRate <= 10_000) { problems.append("--login-rate must be in [0, 10000] per second.") }
        if loginRate > 0 && (loginAccounts < 1 || !(loginPeriod >= 1)) { problems.append("--login-accounts must be at least 1 and --login-period at least 1 s.") }
        if loginRate > 0 && drivers == 0 { problems.append("--login-rate measures location latency under log-ins: it needs --drivers > 0.") }
        return problems
    }
}
