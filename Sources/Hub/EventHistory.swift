/// The latest events of one trip, oldest first, bounded by `capacity`: what `resume` can replay.
struct EventHistory: Sendable {
    let capacity: Int
    private var events: [HubEvent] = []
    /// Index of the oldest event once the buffer has wrapped.
    private var start = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    mutating func append(_ event: HubEvent) {
        if events.count < capacity {
            events.append(event)
        } else {
            events[start] = event
            start = (start + 1) % capacity
        }
    }

    /// The events with `seq` in `range`, oldest first, or nil when the history no longer reaches
    /// back to the range's first event.
    func events(in range: ClosedRange<Int64>) -> [HubEvent]? {
        let ordered = events[start...] + events[..<start]
        guard let oldest = ordered.first?.seq, oldest <= range.lowerBound else { return nil }
        return ordered.filter { range.contains($0.seq) }
    }
}
