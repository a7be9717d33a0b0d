import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process for tests, spawned and reaped with `posix_spawn` and `waitpid`.
///
/// Foundation's `Process` is not used: its exit notification proved unreliable in the
/// shared test process (a waiting test hung forever).
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let exitStatus = Mutex<Int32?>(nil)

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private init(pid: pid_t) {
        self.pid = pid
    }

    /// Starts `executable` with standard input from `inputPath`, standard output and error
    /// appended to `outputPath`, and none of this process's other descriptors.
    public static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, inputPath: String = "/dev/null",
        outputPath: String
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Keep the test process's sockets and pipes out of the child (glibc 2.34 and later;
        // Swift's Glibc module does not import it, so it is looked up).
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentStrings: [UnsafeMutablePointer<CChar>?]? = environment.map { variables in
            variables.map { key, value in strdup("\(key)=\(value)") } + [nil]
        }
        defer { environmentStrings?.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = environmentStrings.map { posix_spawn(&pid, executable, &actions, nil, argv, $0) }
            ?? posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw Failure(description: "cannot run \(executable): \(String(cString: strerror(spawned)))")
        }
        return ChildProcess(pid: pid)
    }

    /// The exit status once the child has ended (128 + n when signal n ended it), else nil.
    public var status: Int32? {
        exitStatus.withLock { cached in
            if let cached { return cached }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            let signal = raw & 0x7f
            cached = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
            return cached
        }
    }

    public var isRunning: Bool { status == nil }

    public func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits for the child to end, up to `timeout`; returns its status or nil when it still runs.
    public func wait(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status { return status }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return status
    }

    /// Blocks the calling thread until the child ends (for `atexit` handlers, which cannot await).
    public func waitUntilExitBlocking() -> Int32 {
        while true {
            if let status { return status }
            usleep(10_000)
        }
    }

    /// Runs `executable` to the end, with `input` on its standard input, and returns what it
    /// printed; throws when it fails.
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], input: String = "", environment: [String: String]? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> String {
        let (status, output) = try await outcome(executable, arguments, input: input, environment: environment, timeout: timeout)
        guard status == 0 else {
            throw Failure(description: "\(executable) \(arguments.joined(separator: " ")) ended with \(status.map(String.init) ?? "a time-out"): \(output)")
        }
        return output
    }

    /// Runs `executable` to the end; its exit status (nil after a time-out) and what it printed.
    public static func outcome(
        _ executable: String, _ arguments: [String], input: String = "", environment: [String: String]? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> (status: Int32?, output: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-run-\(UUID().uuidString)").path
        let (inputPath, outputPath) = (base + ".in", base + ".out")
        defer {
            try? FileManager.default.removeItem(atPath: inputPath)
            try? FileManager.default.removeItem(atPath: outputPath)
        }
        try Data(input.utf8).write(to: URL(fileURLWithPath: inputPath))
        let child = try spawn(executable, arguments, environment: environment, inputPath: inputPath, outputPath: outputPath)
        let status = await child.wait(timeout: timeout)
        if status == nil { child.send(SIGKILL) }
        return (status, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }
}
