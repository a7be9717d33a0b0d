import BenchSupport

/// The simulation's only source of randomness: the benchmarks' `SplitMix64` seeded with the
/// run's seed, so every choice (workload, schedule, faults, ids) replays from the seed alone.
public struct SimRandom: RandomNumberGenerator, Sendable {
    private var generator: SplitMix64

    public init(seed: UInt64) {
        generator = SplitMix64(seed: seed)
    }

    public mutating func next() -> UInt64 {
        generator.next()
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool {
        Double(next() >> 11) / Double(1 << 53) < p
    }

    /// An index into a collection of `count` elements (count > 0).
    public mutating func index(_ count: Int) -> Int {
        Int(next() % UInt64(count))
    }
}
