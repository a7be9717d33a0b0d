import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import TestSupport
import Testing

/// A `taxi-hub serve` child process on a data folder, for restart and crash tests.
final class HubProcess: Sendable {
    let port: Int
    private let process: ChildProcess
    let logFile: URL

    struct StartFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// The `taxi-hub` executable built next to this test bundle.
    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["TAXI_HUB_BINARY"] { return URL(fileURLWithPath: path) }
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("taxi-hub"),
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("taxi-hub"),
            URL(fileURLWithPath: ".build/debug/taxi-hub"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[2]
    }

    private init(process: ChildProcess, port: Int, logFile: URL) {
        self.process = process
        self.port = port
        self.logFile = logFile
    }

    /// Starts a hub on `directory` (data and media inside), signing tokens with `secret`, and
    /// waits until it listens.
    static func start(directory: URL, extraArguments: [String] = [], secret: String = LiveHub.secret) async throws -> HubProcess {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let logFile = directory.appendingPathComponent("hub-\(UUID().uuidString).log")
        var environment = ProcessInfo.processInfo.environment
        environment["TAXI_HUB_JWT_SECRET"] = secret
        let process = try ChildProcess.spawn(
            executable.path,
            [
                "serve", "--port", "0", "--data-dir", directory.appendingPathComponent("data").path,
                "--media-dir", directory.appendingPathComponent("media").path, "--snapshot-interval", "0.2",
                "--bcrypt-cost", "4", "--max-password-checks", "10000", "--password-hashing-class", "normal", "--keep-alive-timeout", "3600",  // the test client never reconnects
            ] + extraArguments,
            environment: environment, outputPath: logFile.path
        )
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            if let line = log.split(separator: "\n").first(where: { $0.contains("taxi-hub listening on") }),
                let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
            {
                return HubProcess(process: process, port: port, logFile: logFile)
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.send(SIGKILL)
        throw StartFailure(description: "taxi-hub did not start: \((try? String(contentsOf: logFile, encoding: .utf8)) ?? "")")
    }

    /// Sends `signal` and waits for the process to exit; returns its exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) async throws -> Int32 {
        process.send(signal)
        if let status = await process.wait(timeout: .seconds(30)) { return status }
        process.send(SIGKILL)
        Issue.record("taxi-hub did not exit after signal \(signal)")
        return await process.wait(timeout: .seconds(10)) ?? -1
    }

    var log: String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    /// Runs `body` with helpers talking to this process over real sockets.
    func withHub<Value: Sendable>(directory: URL, _ body: @escaping @Sendable (LiveHub) async throws -> Value) async throws -> Value {
        let port = self.port
        return try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            let hub = LiveHub(port: port, directory: directory) { uri, method, headers, body in
                var headers = headers
                headers[.connection] = "keep-alive"
                let response = try await client.execute(
                    TestClient.Request(uri, method: method, authority: "localhost", headers: headers, body: body)
                )
                return LiveHub.HTTPResult(status: response.status, headers: response.headers, body: response.body ?? ByteBuffer())
            }
            return try await body(hub)
        }
    }
}
