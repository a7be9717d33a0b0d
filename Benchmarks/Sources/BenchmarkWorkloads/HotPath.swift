import Benchmark

/// What every hot-path benchmark measures, and how far a run may stray from the committed
/// thresholds (`Thresholds/`) or from another baseline before a check fails.
public enum HotPath {
    /// Wall-clock time of a sample and the mallocs it made. (Not `cpuTotal`: Linux reports a
    /// process's CPU time in 10 ms steps, longer than most samples here. Not `instructions`: this
    /// machine gives no performance counters.)
    public static var metrics: [BenchmarkMetric] { [.wallClock, .mallocCountTotal] }

    /// Tolerances for `swift package benchmark thresholds check` (p90 against Thresholds/) and
    /// `baseline check` (p50 and p90 against another baseline).
    ///
    /// Times may move by `timeTolerance` percent either way: this machine's two cores are shared
    /// with other builds, and runs of unchanged code lay up to 31 % from the committed p90s
    /// (README). A hot path that gets slower by more than that fails; one that gets faster fails
    /// too, as "better than the thresholds", until the thresholds are recorded again. Malloc
    /// counts are the same from run to run, while one more allocation per operation moves them
    /// by 4 % or more, so they may move by less than that.
    public static var tolerances: [BenchmarkMetric: BenchmarkThresholds] {
        [
            .wallClock: BenchmarkThresholds(relative: [.p50: timeTolerance, .p90: timeTolerance]),
            .mallocCountTotal: BenchmarkThresholds(relative: [.p50: mallocTolerance, .p90: mallocTolerance]),
        ]
    }

    /// Percent a time may differ from its threshold.
    public static let timeTolerance = 50.0
    /// Percent a malloc count may differ from its threshold.
    public static let mallocTolerance = 3.0

    /// A hot-path benchmark: `scalingFactor` operations per sample (so a sample lasts long enough
    /// to time well), samples for up to `maxDuration` after a short warm-up.
    public static func configuration(
        scalingFactor: BenchmarkScalingFactor = .kilo, maxDuration: Duration = .seconds(2)
    ) -> Benchmark.Configuration {
        Benchmark.Configuration(
            metrics: metrics, warmupIterations: 3, scalingFactor: scalingFactor, maxDuration: maxDuration,
            maxIterations: 10_000, thresholds: tolerances
        )
    }
}
