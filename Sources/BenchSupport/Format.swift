import Foundation

/// How numbers appear in the benchmarks' tables and progress lines.
public enum Format {
    /// `100,000`.
    public static func count(_ value: Int) -> String {
        let digits = String(value)
        var grouped = ""
        for (offset, digit) in digits.enumerated() {
            if offset > 0, (digits.count - offset).isMultiple(of: 3) { grouped += "," }
            grouped.append(digit)
        }
        return grouped
    }

    /// `0.912 s`.
    public static func seconds(_ value: Double) -> String {
        String(format: "%.3f s", value)
    }

    /// `1.23`, `12.3` or `123` (three significant digits, at most two decimals).
    public static func milliseconds(_ value: Double) -> String {
        String(format: value < 10 ? "%.2f" : value < 100 ? "%.1f" : "%.0f", value)
    }

    /// `1.07×`.
    public static func ratio(_ value: Double) -> String {
        String(format: "%.2f×", value)
    }
}
