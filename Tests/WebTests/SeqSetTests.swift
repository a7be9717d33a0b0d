import Testing

@testable import LoadTest

/// The load generator's record of the `seq`s it saw of a trip: dense runs and the jump a restored
/// trip makes (docs/protocol.md §3.1, "Across restarts").
@Suite("Load generator's seq set")
struct SeqSetTests {
    @Test("finds duplicates, keeps the highest, and takes a jump to the clock in microseconds at no cost")
    func sparse() {
        var seen = SeqSet()
        let dense = (1...200).map { seen.insert($0) }
        #expect(dense.allSatisfy { $0 })
        let duplicates = [seen.insert(64), seen.insert(200)]
        #expect(duplicates == [false, false])
        let restored = 1_800_000_000_000_000
        let jumped = [seen.insert(restored), seen.insert(restored + 1), seen.insert(restored + 64)]
        #expect(jumped == [true, true, true])
        let again = seen.insert(restored + 1)
        #expect(!again)
        #expect(seen.highest == restored + 64)
        let late = seen.insert(201)
        #expect(late, "an older event seen late is new")
        #expect(seen.highest == restored + 64)
    }
}
