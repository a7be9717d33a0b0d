import Histogram

/// Latencies recorded in microseconds: one histogram shape for every benchmark.
public enum Latency {
    /// Larger latencies are recorded as this (one minute).
    public static let maxMicroseconds: UInt64 = 60_000_000

    /// An empty histogram of microseconds, 1 µs to a minute, three significant digits.
    public static func emptyHistogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: maxMicroseconds, numberOfSignificantValueDigits: .three)
    }

    /// Records the time from `start` to `end` (monotonic nanoseconds) in microseconds, clamped to the histogram's range.
    public static func record(from start: UInt64, to end: UInt64, in histogram: inout Histogram<UInt64>) {
        _ = histogram.record(min(end > start ? (end - start) / 1_000 : 0, maxMicroseconds))
    }
}

/// Percentiles of a latency histogram, in milliseconds.
public struct LatencySummary: Codable, Sendable, Equatable {
    public let count: Int
    public let p50: Double
    public let p99: Double
    public let p999: Double
    public let max: Double

    public init(_ histogram: Histogram<UInt64>) {
        func milliseconds(_ microseconds: UInt64) -> Double { Double(microseconds) / 1_000 }
        count = Int(histogram.totalCount)
        p50 = milliseconds(histogram.valueAtPercentile(50))
        p99 = milliseconds(histogram.valueAtPercentile(99))
        p999 = milliseconds(histogram.valueAtPercentile(99.9))
        max = milliseconds(histogram.max)
    }
}
