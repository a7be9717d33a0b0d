import Foundation

/// The machine a run measured, as the results print it.
public struct Machine: Codable, Sendable {
    /// CPU model (`model name` in /proc/cpuinfo).
    public let cpu: String
    public let cores: Int
    /// `MemTotal` of /proc/meminfo.
    public let memoryGiB: Double
    public let kernel: String
    /// The PostgreSQL server's version, when the benchmark uses one.
    public let postgres: String?

    public static func current(postgresVersion: String? = nil) -> Machine {
        Machine(
            cpu: field("model name", in: "/proc/cpuinfo") ?? "unknown",
            cores: ProcessInfo.processInfo.activeProcessorCount,
            memoryGiB: (field("MemTotal", in: "/proc/meminfo")?.split(separator: " ").first.flatMap { Double($0) } ?? 0)
                / 1_048_576,
            kernel: (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ProcessInfo.processInfo.operatingSystemVersionString,
            postgres: postgresVersion
        )
    }

    public var summary: String {
        "\(cpu), \(cores) cores, \(String(format: "%.1f", memoryGiB)) GiB, Linux \(kernel)" + (postgres.map { ", PostgreSQL \($0)" } ?? "")
    }

    /// The value of the first `key: value` line of a /proc file.
    private static func field(_ key: String, in path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == key {
                return parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}
