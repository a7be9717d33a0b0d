import BenchSupport

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

extension LatencyResults {
    /// The run as Markdown tables (as in docs/benchmarks-history.md).
    var markdown: [String] {
        var lines = [
            "WebSocket echo round trip in ms: \(connections) connections, "
                + "\(Format.count(messagesPerSecond)) messages/s, \(messageBytes)-byte frames, "
                + "\(Int(phaseSeconds)) s phases, \(rounds) round(s); a snapshot every "
                + "\(snapshotIntervalSeconds) s after the previous one ended",
            "",
            "| load | replies | lost | p50 | p99 | p99.9 | max | p99 ÷ p99 without snapshots | snapshot writes: count, median, max |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in rows {
            let writes =
                row.snapshotWriteMedianSeconds.map {
                    "\(row.snapshotWrites), \(Format.seconds($0)), \(Format.seconds(row.snapshotWriteMaxSeconds ?? $0))"
                } ?? "–"
            lines.append(
                "| \(Format.snapshotLabel(row.snapshotTrips)) | \(Format.count(row.latency.count)) | \(row.lost) | "
                    + Self.milliseconds(row.latency) + " | \(Format.ratio(row.p99Ratio)) | \(writes) |"
            )
        }
        lines += [
            "", "Each phase, in the order they ran:", "",
            "| phase | round | load | p50 | p99 | p99.9 | max | snapshot writes |", "|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for phase in phases {
            lines.append(
                "| \(phase.index) | \(phase.round) | \(Format.snapshotLabel(phase.snapshotTrips)) | "
                    + Self.milliseconds(phase.latency) + " | \(phase.snapshotWrites.count) |"
            )
        }
        if unrecognizedReplies > 0 {
            lines += ["", "Replies that were not echoes: \(unrecognizedReplies)"]
        }
        return lines
    }

    /// `p50 | p99 | p99.9 | max` cells.
    private static func milliseconds(_ summary: LatencySummary) -> String {
        [summary.p50, summary.p99, summary.p999, summary.max].map(Format.milliseconds).joined(separator: " | ")
    }
}
