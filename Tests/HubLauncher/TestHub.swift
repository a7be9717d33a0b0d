import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Web

#if canImport(Glibc)
import Glibc
#endif

/// The one way to start a whole hub for a test or a benchmark, on a data folder of its own and a
/// port the kernel picks, in either of two ways:
///
/// - `inProcess`: `buildHub` inside this process, run as `taxi-hub serve` runs it (`HubServer.run`:
///   the server and the socket drain), stopped with a graceful shutdown as SIGTERM would.
/// - `process`: `taxi-hub serve` as a child process, for restart, crash and cluster tests; stopped
///   with any signal, SIGKILL included.
///
/// Either way the hub says where it listens in its log (`taxi-hub listening on HOST:PORT`), and
/// that line is where the port is read from; and either way the test settings come from one
/// place, `configuration(in:)`.
public final class TestHub: Sendable {
    public let port: Int
    public let directory: URL
    private let running: Running

    private enum Running: Sendable {
        /// The group that runs the hub (no signal handlers of its own), and the task running it.
        case inProcess(group: ServiceGroup, run: Task<Void, any Error>)
        case process(ChildProcess, logFile: URL)
    }

    public struct StartFailure: Error, CustomStringConvertible {
        public let description: String
    }

    public struct StopFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The secret test hubs sign tokens with.
    public static let secret = "test-secret-that-is-at-least-32-bytes-long"

    private init(port: Int, directory: URL, running: Running) {
        self.port = port
        self.directory = directory
        self.running = running
    }

    /// What every test hub starts from: its own folders under `directory`, an ephemeral port,
    /// the test secret, cheap bcrypt, quick snapshots and keep-alive connections kept.
    public static func configuration(in directory: URL) -> HubConfiguration {
        var configuration = HubConfiguration()
        configuration.port = 0
        configuration.dataDirectory = directory.appendingPathComponent("data").path
        configuration.mediaDirectory = directory.appendingPathComponent("media").path
        configuration.jwtSecret = secret
        configuration.bcryptCost = 4
        // Tests sign users up side by side; the bound has its own tests (AuthAbuseTests).
        configuration.maxPasswordChecks = 10_000
        // Many hubs share the test process with CPU-bound suites (the simulation), where
        // idle-class threads would wait for minutes; the class has its own test.
        configuration.passwordHashingClass = "normal"
        configuration.snapshotInterval = .milliseconds(100)
        // The test client keeps one connection for the whole test and never reconnects.
        configuration.keepAliveTimeout = .seconds(3600)
        return configuration
    }

    // MARK: In this process

    /// Builds the hub of `configuration` in this process and returns once it listens. `directory`
    /// is the folder its data and media live in (the caller's to remove); log lines at `logLevel`
    /// and above go to standard error.
    public static func inProcess(
        _ configuration: HubConfiguration, directory: URL, logLevel: Logger.Level = .warning
    ) async throws -> TestHub {
        let listening = ListeningPort()
        let logger = Logger(label: "taxi-hub") { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return ListeningWatcher(listening: listening, output: handler)
        }
        let server = try await buildHub(configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [Serving(server: server)], logger: logger))
        let ended = Atomic<Bool>(false)
        let run = Task {
            defer { ended.store(true, ordering: .releasing) }
            try await group.run()
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, !ended.load(ordering: .acquiring) {
            if let port = listening.port { return TestHub(port: port, directory: directory, running: .inProcess(group: group, run: run)) }
            try await Task.sleep(for: .milliseconds(5))
        }
        run.cancel()
        let outcome = await run.result
        throw StartFailure(description: "the hub did not start listening: \(outcome)")
    }

    /// `HubServer.run` as the one service of a group without signal handlers, so that a graceful
    /// shutdown of that group is the hub's own (sockets closed with 1001, final snapshot).
    private struct Serving: Service {
        let server: HubServer

        func run() async throws {
            try await server.run()
        }
    }

    // MARK: As a child process

    /// The `taxi-hub` executable: `$TAXI_HUB_BINARY`, else the one built next to this test bundle.
    public static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["TAXI_HUB_BINARY"] { return URL(fileURLWithPath: path) }
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("taxi-hub"),
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("taxi-hub"),
            URL(fileURLWithPath: ".build/debug/taxi-hub"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[2]
    }

    /// `configuration(in:)` as `serve` arguments.
    static func arguments(in directory: URL) -> [String] {
        let configuration = configuration(in: directory)
        func seconds(_ duration: Duration) -> String {
            String(Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
        }
        return [
            "serve", "--port", String(configuration.port), "--data-dir", configuration.dataDirectory,
            "--media-dir", configuration.mediaDirectory, "--snapshot-interval", seconds(configuration.snapshotInterval),
            "--bcrypt-cost", String(configuration.bcryptCost), "--max-password-checks", String(configuration.maxPasswordChecks),
            "--password-hashing-class", configuration.passwordHashingClass,
            "--keep-alive-timeout", seconds(configuration.keepAliveTimeout),
        ]
    }

    /// Starts `taxi-hub serve` on `directory` (data, media and its log inside) with the test
    /// settings, then `arguments` (which win over them), signing tokens with `secret`; returns
    /// once it listens.
    public static func process(directory: URL, arguments: [String] = [], secret: String = secret) async throws -> TestHub {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let logFile = directory.appendingPathComponent("hub-\(UUID().uuidString).log")
        var environment = ProcessInfo.processInfo.environment
        environment["TAXI_HUB_JWT_SECRET"] = secret
        let process = try ChildProcess.spawn(
            executable.path, Self.arguments(in: directory) + arguments, environment: environment, outputPath: logFile.path
        )
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            if let port = log.split(separator: "\n").lazy.compactMap(ListeningPort.parse).first {
                return TestHub(port: port, directory: directory, running: .process(process, logFile: logFile))
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.send(SIGKILL)
        throw StartFailure(description: "taxi-hub did not start: \((try? String(contentsOf: logFile, encoding: .utf8)) ?? "")")
    }

    /// The child process's log so far; empty for a hub in this process (its lines go to
    /// standard error).
    public var log: String {
        guard case .process(_, let logFile) = running else { return "" }
        return (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    // MARK: Stopping

    /// Stops the hub and returns its exit status. A child process gets `signal` and, when it has
    /// not exited 30 s later, SIGKILL and a `StopFailure`. A hub in this process takes SIGTERM or
    /// SIGINT only, as a graceful shutdown: status 0, or 1 when its run ended with an error (on
    /// standard error), as `taxi-hub serve` would exit; when that has not ended 30 s later it is
    /// cancelled, with a `StopFailure`.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) async throws -> Int32 {
        switch running {
        case .process(let process, _):
            process.send(signal)
            if let status = await process.wait(timeout: .seconds(30)) { return status }
            process.send(SIGKILL)
            _ = await process.wait(timeout: .seconds(10))
            throw StopFailure(description: "taxi-hub did not exit after signal \(signal)")
        case .inProcess(let group, let run):
            guard signal == SIGTERM || signal == SIGINT else {
                throw StopFailure(description: "a hub in this process can only be stopped gracefully, not with signal \(signal)")
            }
            await group.triggerGracefulShutdown()
            let watchdog = Task {
                try await Task.sleep(for: .seconds(30))
                run.cancel()
            }
            let result = await run.result
            watchdog.cancel()
            if run.isCancelled { throw StopFailure(description: "the hub did not stop within 30 s of a graceful shutdown") }
            guard case .failure(let error) = result else { return 0 }
            // As a process that fails on its way out exits with 1, which its callers may check.
            FileHandle.standardError.write(Data("taxi-hub on port \(port) ended with an error: \(error)\n".utf8))
            return 1
        }
    }
}

/// The port of the hub's `taxi-hub listening on HOST:PORT` line, once it came.
private final class ListeningPort: Sendable {
    private let value = Atomic<Int>(0)

    var port: Int? {
        let port = value.load(ordering: .acquiring)
        return port == 0 ? nil : port
    }

    func heard(_ message: String) {
        if let port = Self.parse(Substring(message)) { value.store(port, ordering: .releasing) }
    }

    /// The port of a `taxi-hub listening on HOST:PORT` line (a child's log line has more before it).
    static func parse(_ line: Substring) -> Int? {
        guard line.contains("taxi-hub listening on") else { return nil }
        return line.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }
}

/// Passes log lines at `output`'s level on to it, and hands the hub's info line that tells its
/// port to `listening`: until that came, it asks for info lines too.
private struct ListeningWatcher: LogHandler {
    let listening: ListeningPort
    var output: StreamLogHandler

    var metadata: Logger.Metadata {
        get { output.metadata }
        set { output.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { output[metadataKey: key] }
        set { output[metadataKey: key] = newValue }
    }

    var logLevel: Logger.Level {
        get { listening.port == nil ? min(output.logLevel, .info) : output.logLevel }
        set { output.logLevel = newValue }
    }

    func log(event: LogEvent) {
        if event.level >= output.logLevel { output.log(event: event) }
        if event.level == .info, listening.port == nil { listening.heard(event.message.description) }
    }
}
