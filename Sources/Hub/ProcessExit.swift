import Foundation

/// Ends the process when the hub can no longer keep its promise (what it acknowledged is
/// durable; one owner per trip): holding on to state that may never be durable, or that another
/// node now owns, would be worse than a restart, which rebuilds from the store.
public enum ProcessExit {
    /// A cluster node lost its lease (its local deadline passed, a fenced commit was refused, or
    /// another node took it over): a supervisor starts it again as a fresh node.
    public static let leaseLost: Int32 = 75
    /// The write-ahead journal could not be written (`EX_IOERR`): like PostgreSQL after a failed
    /// `fsync`, the process stops rather than go on with changes that may not be on disk.
    public static let journalFailed: Int32 = 74

    /// Exits with `code` after `grace`, long enough for the error replies already queued to
    /// reach their sockets (the event loops keep running meanwhile).
    public static func soon(code: Int32, grace: Duration = .milliseconds(200)) {
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18)
            exit(code)
        }
    }
}
