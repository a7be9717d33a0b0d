import Testing

@testable import LoadTest
import TestSupport

/// The load generator's record of the `seq`s it saw of a trip: dense runs and the jump a restored
/// trip makes (docs/protocol.md §3.1, "Across restarts").
@Suite("Load generator's seq set", MachineLoad.shared)
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

    @Test("resumes from where the last resume started until its resume.done arrives, then from the highest seen")
    func resumePoint() {
        var seen = SeqSet()
        for seq in 1...5 { _ = seen.insert(seq) }
        #expect(seen.resumePoint() == 5)
        // Live events after the reconnect, while the replay of (5, ...] may still be on its way.
        _ = seen.insert(9)
        #expect(seen.resumePoint() == 5, "the connection dropped before resume.done: the replay is owed again")
        seen.resumeEnded()
        #expect(seen.resumePoint() == 9)
    }

    @Test("resume.done is read from the wire")
    func resumeDoneFrame() {
        #expect(HubFrame.parse(#"{"type":"resume.done","data":{"trip_id":"t-1","seq":12}}"#) == .resumeDone(tripID: "t-1"))
        #expect(HubFrame.parse(#"{"type":"resume.done","data":{}}"#) == .other)
    }
}
