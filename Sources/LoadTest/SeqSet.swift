/// The `seq` numbers seen of one trip (docs/protocol.md §3.1), as a bit set, and the highest:
/// a trip's numbers are dense from 1, so a few words hold a whole trip.
struct SeqSet: Sendable {
    private var words: [UInt64] = []
    /// The highest number inserted; 0 when none was.
    private(set) var highest = 0

    /// Inserts `seq`; false when it was already there (a duplicate).
    mutating func insert(_ seq: Int) -> Bool {
        guard seq > 0 else { return true }
        let word = seq >> 6
        let bit = UInt64(1) << UInt64(seq & 63)
        if word >= words.count { words.append(contentsOf: repeatElement(0, count: word - words.count + 1)) }
        guard words[word] & bit == 0 else { return false }
        words[word] |= bit
        highest = max(highest, seq)
        return true
    }
}
