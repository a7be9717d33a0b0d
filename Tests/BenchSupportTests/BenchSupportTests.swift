import BenchSupport
import Foundation
import Testing
import TestSupport

@Suite("BenchSupport: the numbers in the tools' tables", MachineLoad.shared)
struct BenchSupportTests {
    @Test("counts are grouped by thousands, other values have fixed precision")
    func formats() {
        #expect(Format.count(0) == "0")
        #expect(Format.count(999) == "999")
        #expect(Format.count(1_000) == "1,000")
        #expect(Format.count(100_000) == "100,000")
        #expect(Format.count(1_234_567) == "1,234,567")
        #expect(Format.seconds(0.9124) == "0.912 s")
        #expect(Format.milliseconds(1.234) == "1.23")
        #expect(Format.milliseconds(12.34) == "12.3")
        #expect(Format.milliseconds(123.4) == "123")
        #expect(Format.ratio(1.0712) == "1.07×")
    }

    @Test("the median of odd and even counts, nil for none; durations in seconds")
    func statistics() {
        #expect([Double]().median == nil)
        #expect([3, 1, 2].median == 2)
        #expect([4, 1, 3, 2].median == 2.5)
        #expect(Duration.milliseconds(1_500).inSeconds == 1.5)
        #expect(Duration.seconds(2).inSeconds == 2)
    }

    @Test("SplitMix64 repeats its sequence for a seed, differs across seeds, and draws version 4 UUIDs")
    func seededRandom() {
        var first = SplitMix64(seed: 42), again = SplitMix64(seed: 42), other = SplitMix64(seed: 43)
        let a = (0..<8).map { _ in first.next() }
        #expect(a == (0..<8).map { _ in again.next() })
        #expect(a != (0..<8).map { _ in other.next() })
        var ids = SplitMix64(seed: 7)
        let uuids = (0..<1_000).map { _ in ids.uuid() }
        #expect(Set(uuids).count == 1_000)
        for uuid in uuids {
            let text = uuid.uuidString
            #expect(Array(text)[14] == "4")
            #expect("89AB".contains(Array(text)[19]))
        }
    }

    @Test("a latency summary reads its percentiles from the histogram, in milliseconds")
    func latencySummary() {
        var histogram = Latency.emptyHistogram()
        for microseconds in 1...1_000 { Latency.record(from: 0, to: UInt64(microseconds) * 1_000, in: &histogram) }
        let summary = LatencySummary(histogram)
        #expect(summary.count == 1_000)
        #expect(abs(summary.p50 - 0.5) < 0.01)
        #expect(abs(summary.p99 - 0.99) < 0.01)
        #expect(summary.max >= summary.p999 && summary.p999 >= summary.p99 && summary.p99 >= summary.p50)
    }
}
