import BenchSupport

/// One store, size and kind of write, measured `seconds.count` times.
struct FlushResult: Codable, Sendable {
    enum Kind: String, Codable, Sendable {
        /// N trips that are not stored yet.
        case insert
        /// The same N trips, each changed.
        case update
    }

    let store: String
    let trips: Int
    let kind: Kind
    let seconds: [Double]
    let medianSeconds: Double
    let minSeconds: Double

    init(store: String, trips: Int, kind: Kind, seconds: [Double]) {
        self.store = store
        self.trips = trips
        self.kind = kind
        self.seconds = seconds
        medianSeconds = seconds.median ?? 0
        minSeconds = seconds.min() ?? 0
    }
}

/// One phase of the latency run, in the order they ran.
struct PhaseResult: Codable, Sendable {
    let index: Int
    let round: Int
    /// Trips per snapshot written during the phase; nil for a phase without snapshots.
    let snapshotTrips: Int?
    let sent: Int
    let latency: LatencySummary
    /// Duration of each snapshot write during the phase, in seconds.
    let snapshotWrites: [Double]
}

/// The phases of one kind (no snapshots, or snapshots of one size) taken together.
struct LatencyRow: Codable, Sendable {
    let snapshotTrips: Int?
    let latency: LatencySummary
    /// p99 of this row over p99 of the row without snapshots.
    let p99Ratio: Double
    let sent: Int
    let lost: Int
    let snapshotWrites: Int
    let snapshotWriteMedianSeconds: Double?
    let snapshotWriteMaxSeconds: Double?
}

/// Everything the latency run measured, with the settings it ran with.
struct LatencyResults: Codable, Sendable {
    let connections: Int
    let messagesPerSecond: Int
    let messageBytes: Int
    let phaseSeconds: Double
    let rounds: Int
    let snapshotIntervalSeconds: Double
    let rows: [LatencyRow]
    let phases: [PhaseResult]
    /// Replies that were not this benchmark's echoes (an error from the hub, say); 0 in a clean run.
    let unrecognizedReplies: Int
}
