/// The `seq` numbers seen of one trip (docs/protocol.md §3.1), as a sparse bit set, and the
/// highest. A trip's numbers grow by one, but jump when the hub restores the trip after a restart
/// (to its clock in microseconds, about 1.8e15): 64-bit words keyed by word index, so a run of
/// numbers takes a few words wherever it starts.
struct SeqSet: Sendable {
    private var words: [Int: UInt64] = [:]
    /// The highest number inserted; 0 when none was.
    private(set) var highest = 0
    /// Where the last `resume` started, until its `resume.done` arrived (docs/protocol.md §3.5).
    private var pendingResume: Int?

    /// Where to resume from: the highest number seen, unless an earlier resume has not ended
    /// yet; then where that one started (its replay may have been cut off, even though live
    /// events with higher numbers came through first). Marks a resume as started.
    mutating func resumePoint() -> Int {
        let point = pendingResume ?? highest
        pendingResume = point
        return point
    }

    /// The `resume.done` of the trip arrived: its replay is in, and the next resume starts from
    /// the highest number seen.
    mutating func resumeEnded() {
        pendingResume = nil
    }

    /// Inserts `seq`; false when it was already there (a duplicate).
    mutating func insert(_ seq: Int) -> Bool {
        guard seq > 0 else { return true }
        let bit = UInt64(1) << UInt64(seq & 63)
        let word = words[seq >> 6, default: 0]
        guard word & bit == 0 else { return false }
        words[seq >> 6] = word | bit
        highest = max(highest, seq)
        return true
    }
}
