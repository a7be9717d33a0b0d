import BenchSupport
import Foundation

/// Everything one run measured: printed as Markdown, written as JSON.
struct Report: Codable, Sendable {
    /// Issue 4's targets.
    static let flushTargetTrips = 100_000
    static let flushTargetSeconds = 1.0
    static let p99TargetRatio = 1.2

    let machine: Machine
    var flush: [FlushResult] = []
    var latency: LatencyResults?

    func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    var markdown: String {
        var lines = ["Machine: \(machine.summary)", ""]
        if !flush.isEmpty { lines += flushTable + [""] }
        if let latency { lines += latencyTables(latency) + [""] }
        lines += targets
        return lines.joined(separator: "\n")
    }

    private var flushTable: [String] {
        let columns: [(store: String, kind: FlushResult.Kind)] = [
            ("PostgreSQL", .insert), ("PostgreSQL", .update), ("SQLite", .insert), ("SQLite", .update),
        ]
        let runs = flush.first?.seconds.count ?? 0
        var lines = [
            "Flush time of one snapshot (`SnapshotStore.write`, one transaction): median (min) of \(runs) runs",
            "",
            "| changed trips | " + columns.map { "\($0.store) \($0.kind.rawValue)" }.joined(separator: " | ") + " |",
            "|---:|" + String(repeating: "---:|", count: columns.count),
        ]
        for trips in Array(Set(flush.map(\.trips))).sorted() {
            let cells = columns.map { column in
                flush.first { $0.trips == trips && $0.store == column.store && $0.kind == column.kind }
                    .map { "\(Format.seconds($0.medianSeconds)) (\(Format.seconds($0.minSeconds)))" } ?? "–"
            }
            lines.append("| \(Format.count(trips)) | " + cells.joined(separator: " | ") + " |")
        }
        return lines
    }

    private func latencyTables(_ latency: LatencyResults) -> [String] {
        var lines = [
            "WebSocket echo round trip in ms: \(latency.connections) connections, "
                + "\(Format.count(latency.messagesPerSecond)) messages/s, \(latency.messageBytes)-byte frames, "
                + "\(Int(latency.phaseSeconds)) s phases, \(latency.rounds) round(s); a snapshot every "
                + "\(latency.snapshotIntervalSeconds) s after the previous one ended",
            "",
            "| load | replies | lost | p50 | p99 | p99.9 | max | p99 ÷ p99 without snapshots | snapshot writes: count, median, max |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in latency.rows {
            let writes =
                row.snapshotWriteMedianSeconds.map {
                    "\(row.snapshotWrites), \(Format.seconds($0)), \(Format.seconds(row.snapshotWriteMaxSeconds ?? $0))"
                } ?? "–"
            lines.append(
                "| \(Format.snapshotLabel(row.snapshotTrips)) | \(Format.count(row.latency.count)) | \(row.lost) | "
                    + milliseconds(row.latency) + " | \(Format.ratio(row.p99Ratio)) | \(writes) |"
            )
        }
        lines += [
            "", "Each phase, in the order they ran:", "",
            "| phase | round | load | p50 | p99 | p99.9 | max | snapshot writes |", "|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for phase in latency.phases {
            lines.append(
                "| \(phase.index) | \(phase.round) | \(Format.snapshotLabel(phase.snapshotTrips)) | "
                    + milliseconds(phase.latency) + " | \(phase.snapshotWrites.count) |"
            )
        }
        if latency.unrecognizedReplies > 0 {
            lines += ["", "Replies that were not echoes: \(latency.unrecognizedReplies)"]
        }
        return lines
    }

    /// `p50 | p99 | p99.9 | max` cells.
    private func milliseconds(_ summary: LatencySummary) -> String {
        [summary.p50, summary.p99, summary.p999, summary.max].map(Format.milliseconds).joined(separator: " | ")
    }

    /// Whether each of issue 4's targets is met by what this run measured.
    private var targets: [String] {
        var lines = ["Targets (issue 4):"]
        let largest = flush.filter { $0.store == "PostgreSQL" && $0.trips == Self.flushTargetTrips }
        if !largest.isEmpty {
            let worst = largest.map(\.medianSeconds).max()!
            let figures = largest.map { "\($0.kind.rawValue) \(Format.seconds($0.medianSeconds))" }.joined(separator: ", ")
            lines.append(
                "- \(Format.count(Self.flushTargetTrips)) changed trips flushed to PostgreSQL in under "
                    + "\(Self.flushTargetSeconds.formatted()) s (median): \(figures) — "
                    + verdict(worst < Self.flushTargetSeconds, excess: worst / Self.flushTargetSeconds)
            )
        }
        for row in latency?.rows ?? [] {
            guard let trips = row.snapshotTrips else { continue }
            lines.append(
                "- p99 during \(Format.snapshotLabel(trips)) within \(Self.p99TargetRatio)× the p99 without: "
                    + "\(Format.ratio(row.p99Ratio)) — " + verdict(row.p99Ratio <= Self.p99TargetRatio, excess: row.p99Ratio / Self.p99TargetRatio)
            )
        }
        return lines
    }

    private func verdict(_ met: Bool, excess: Double) -> String {
        met ? "met" : "MISSED (\(Format.ratio(excess)) the target)"
    }
}
