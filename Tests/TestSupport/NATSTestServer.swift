import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway `nats-server` on a loopback port, for tests; it can be stopped and started
/// again on the same port (to test reconnection).
///
/// Use `NATSTestServer.with { server in ... }`, which stops the server when the body ends or
/// throws; `deinit` kills a server left running.
public final class NATSTestServer: Sendable {
    public let port: Int
    public let logPath: String
    private let process = Mutex<ChildProcess?>(nil)

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// `nats://127.0.0.1:<port>`
    public var url: String { "nats://127.0.0.1:\(port)" }

    private init(port: Int) {
        self.port = port
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-nats-\(getpid())-\(port).log").path
    }

    deinit {
        process.withLock { $0?.send(SIGKILL) }
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// The `nats-server` executable: `$NATS_SERVER`, else the first found of the usual places.
    public static var executable: String {
        if let path = ProcessInfo.processInfo.environment["NATS_SERVER"], !path.isEmpty { return path }
        let candidates = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// A server object for `port` (a free one when nil), not started yet.
    public static func make(port: Int? = nil) throws -> NATSTestServer {
        NATSTestServer(port: try port ?? FreePort.find())
    }

    /// Starts a server on a free port and waits until it accepts connections.
    public static func start() async throws -> NATSTestServer {
        let server = try make()
        try await server.start()
        return server
    }

    /// Runs `body` with a started server, and stops the server afterwards (also when `body` throws).
    public static func with<T>(_ body: (NATSTestServer) async throws -> T) async throws -> T {
        let server = try await start()
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    public func start() async throws {
        guard process.withLock({ $0?.isRunning != true }) else { return }
        let child = try ChildProcess.spawn(
            Self.executable, ["-a", "127.0.0.1", "-p", String(port)], outputPath: logPath
        )
        process.withLock { $0 = child }
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if Self.accepts(port: port) { return }
            guard child.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        child.send(SIGKILL)
        _ = await child.wait(timeout: .seconds(5))
        throw Failure(description: "nats-server did not start on port \(port): \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and waits until it has exited.
    public func stop() async {
        guard let child = process.withLock({ $0 }) else { return }
        child.send(SIGTERM)
        if await child.wait(timeout: .seconds(10)) == nil {
            child.send(SIGKILL)
            _ = await child.wait(timeout: .seconds(10))
        }
    }

    public var isRunning: Bool { process.withLock { $0?.isRunning ?? false } }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    static func accepts(port: Int) -> Bool {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return connected == 0
    }
}
