import BenchSupport
import Foundation
import Histogram
import Hub

/// The timings of one area, driver count and policy.
struct NearbyRow {
    let area: DriverArea
    let drivers: Int
    let policy: DispatchPolicy
    /// Nanoseconds per search.
    let histogram: Histogram<UInt64>
    let meanCellsAsked: Double
    let meanDriversFound: Double

    var median: UInt64 { histogram.valueAtPercentile(50) }
    var p99: UInt64 { histogram.valueAtPercentile(99) }

    static func markdown(_ rows: [NearbyRow], grid: CellGrid, searches: Int) -> String {
        var lines = [
            "Machine: \(machine)",
            "",
            "`NearbySearch.nearest` in µs per search: \(Format.count(searches)) timed searches per row, "
                + "\(Format.count(Int(grid.cellSize))) m cells; drivers and pick-ups uniform over the area",
            "",
            "| area | drivers | policy | median | p99 | p99.9 | max | cells asked (mean) | drivers found (mean) |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in rows {
            let times = [row.median, row.p99, row.histogram.valueAtPercentile(99.9), row.histogram.max]
            lines.append(
                "| \(row.area.rawValue) | \(Format.count(row.drivers)) | \(Format.policy(row.policy)) | "
                    + times.map(Format.microseconds).joined(separator: " | ")
                    + " | \(Format.mean(row.meanCellsAsked)) | \(Format.mean(row.meanDriversFound)) |"
            )
        }
        return lines.joined(separator: "\n")
    }

    /// CPU model and cores, from /proc/cpuinfo.
    private static var machine: String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }
}
