import Foundation
import TestSupport

/// A real `nats-server` on a free loopback port, for the cluster tests.
final class NATSServerProcess: Sendable {
    let port: Int
    private let process: ChildProcess

    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    static var executable: String? {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"].first(where: FileManager.default.isExecutableFile(atPath:))
    }

    var url: String { "nats://127.0.0.1:\(port)" }

    private init(port: Int, process: ChildProcess) {
        self.port = port
        self.process = process
    }

    /// Starts a server on a port the kernel picks and waits until it accepts clients.
    static func start(logFile: URL) async throws -> NATSServerProcess {
        guard let executable else { throw Missing(description: "nats-server is not installed (scripts/system-packages --with-server)") }
        let process = try ChildProcess.spawn(executable, ["-a", "127.0.0.1", "-p", "-1"], environment: [:], outputPath: logFile.path)
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            if let line = log.split(separator: "\n").first(where: { $0.contains("Listening for client connections on") }),
                let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
            {
                return NATSServerProcess(port: port, process: process)
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.send(SIGKILL)
        throw Missing(description: "nats-server did not start: \((try? String(contentsOf: logFile, encoding: .utf8)) ?? "")")
    }

    func stop() async {
        process.send(SIGTERM)
        if await process.wait(timeout: .seconds(10)) == nil {
            process.send(SIGKILL)
            _ = await process.wait(timeout: .seconds(5))
        }
    }
}
