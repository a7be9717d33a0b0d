import Foundation

/// The `echo.message` frames of the latency load. The hub sends each frame back unchanged, so the
/// frame carries what its reply needs: the phase it belongs to and the time it was scheduled.
enum EchoMessage {
    /// Length of the `data` string, in bytes.
    static let dataLength = 60

    private static let prefix = #"{"type":"echo.message","data":"phase="#

    /// `{"type":"echo.message","data":"phase=P sent=T xxx…"}`, `data` padded to `dataLength`.
    static func text(phase: Int, scheduledAt nanoseconds: UInt64) -> String {
        let fields = "\(phase) sent=\(nanoseconds) "
        let padding = max(0, dataLength - "phase=".utf8.count - fields.utf8.count)
        return prefix + fields + String(repeating: "x", count: padding) + #""}"#
    }

    /// The phase and scheduled time of a reply, or nil when it is not one of ours.
    static func parse(_ text: String) -> (phase: Int, scheduledAt: UInt64)? {
        guard text.hasPrefix(prefix) else { return nil }
        let fields = text.dropFirst(prefix.count).split(separator: " ", maxSplits: 2)
        guard fields.count == 3, let phase = Int(fields[0]), fields[1].hasPrefix("sent="),
            let scheduled = UInt64(fields[1].dropFirst("sent=".count))
        else { return nil }
        return (phase, scheduled)
    }
}
