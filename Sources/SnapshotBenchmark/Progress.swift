import Foundation

/// Progress lines, on stderr so that stdout holds only the results.
enum Progress {
    static func log(_ message: String) {
        FileHandle.standardError.write(Data("snapshot-bench: \(message)\n".utf8))
    }
}
