import Foundation

/// How numbers appear in the tables and progress lines.
enum Format {
    /// `100,000`.
    static func count(_ value: Int) -> String {
        let digits = String(value)
        var grouped = ""
        for (offset, digit) in digits.enumerated() {
            if offset > 0, (digits.count - offset).isMultiple(of: 3) { grouped += "," }
            grouped.append(digit)
        }
        return grouped
    }

    /// `0.912 s`.
    static func seconds(_ value: Double) -> String {
        String(format: "%.3f s", value)
    }

    /// `1.23`, `12.3` or `123` (three significant digits, at most two decimals).
    static func milliseconds(_ value: Double) -> String {
        String(format: value < 10 ? "%.2f" : value < 100 ? "%.1f" : "%.0f", value)
    }

    /// `1.07×`.
    static func ratio(_ value: Double) -> String {
        String(format: "%.2f×", value)
    }

    /// `no snapshots` or `100,000-trip snapshots`.
    static func snapshotLabel(_ trips: Int?) -> String {
        trips.map { "\(count($0))-trip snapshots" } ?? "no snapshots"
    }
}
