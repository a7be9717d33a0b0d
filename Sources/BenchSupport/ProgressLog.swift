import Foundation

/// The progress lines of the project's tools (`taxi-hub loadtest`, the `SnapshotLatency` benchmark):
/// `TOOL: message` on standard error, so that standard output holds only the results.
public struct ProgressLog: Sendable {
    public let tool: String

    public init(_ tool: String) {
        self.tool = tool
    }

    public func log(_ message: String) {
        FileHandle.standardError.write(Data("\(tool): \(message)\n".utf8))
    }
}
