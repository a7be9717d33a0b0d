/// The simulation's only source of randomness: SplitMix64 seeded with the run's seed, so every
/// choice (workload, schedule, faults, ids) replays from the seed alone.
public struct SimRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
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
