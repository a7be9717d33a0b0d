import ArgumentParser
import BenchSupport
import Foundation
import Hub

/// hub-bench's progress lines.
let progress = ProgressLog("hub-bench")

/// How hub-bench's own numbers appear in its tables and progress lines.
extension Format {
    /// Nanoseconds as microseconds: `1.23`, `12.3` or `123`.
    static func microseconds(_ nanoseconds: UInt64) -> String {
        let value = Double(nanoseconds) / 1_000
        return String(format: value < 10 ? "%.2f" : value < 100 ? "%.1f" : "%.0f", value)
    }

    /// `1.5` or `123`.
    static func mean(_ value: Double) -> String {
        String(format: value < 10 ? "%.1f" : "%.0f", value)
    }

    /// `1,000 → 10,000 m, 10 drivers`.
    static func policy(_ policy: DispatchPolicy) -> String {
        "\(count(Int(policy.initialRadius))) → \(count(Int(policy.maxRadius))) m, \(policy.driverCount) drivers"
    }
}

/// Option values given as comma-separated lists.
enum Parse {
    static func integers(_ text: String) throws -> [Int] {
        try items(text).map { item in
            guard let value = Int(item.replacingOccurrences(of: "_", with: "")) else { throw ValidationError("Not a number: \(item)") }
            return value
        }
    }

    static func areas(_ text: String) throws -> [DriverArea] {
        try items(text).map { item in
            guard let area = DriverArea(rawValue: item) else { throw ValidationError("Not an area: \(item)") }
            return area
        }
    }

    /// `1000:10000:10` is an initial radius of 1,000 m, a maximum of 10,000 m and 10 drivers.
    static func policies(_ text: String) throws -> [DispatchPolicy] {
        try items(text).map { item in
            let parts = item.split(separator: ":").map { Double($0) }
            guard parts.count == 3, let initial = parts[0], let max = parts[1], let count = parts[2],
                initial >= 0, max >= initial, count >= 1, count == count.rounded()
            else { throw ValidationError("Not a policy (initialRadius:maxRadius:driverCount): \(item)") }
            return DispatchPolicy(initialRadius: initial, maxRadius: max, driverCount: Int(count))
        }
    }

    private static func items(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
