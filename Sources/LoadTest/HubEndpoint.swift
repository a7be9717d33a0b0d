import BenchSupport
import Foundation
import NIOCore

/// The hub under test: its address, and the HTTP calls the generator makes (bench users,
/// `/metrics`, `/healthz`).
struct HubEndpoint: Sendable {
    /// A user made by `POST /bench/users`.
    struct BenchUser: Decodable, Sendable {
        let id: Int
        let username: String
        let access: String
    }

    /// What `/metrics` says about the hub process.
    struct ProcessReading: Sendable {
        let cpuSeconds: Double
        let residentBytes: Int
        /// The durable commits of trip changes and sign-ups so far; nil from a hub without them
        /// (one from before durable acknowledgements).
        var commits: CommitCounters? = nil
    }

    /// `taxihub_commits_total`, `taxihub_committed_changes_total`, `taxihub_commit_microseconds_total`.
    struct CommitCounters: Sendable, Equatable {
        var commits = 0.0
        var changes = 0.0
        var microseconds = 0.0

        static func - (later: Self, earlier: Self) -> Self {
            Self(commits: later.commits - earlier.commits, changes: later.changes - earlier.changes, microseconds: later.microseconds - earlier.microseconds)
        }

        static func + (a: Self, b: Self) -> Self {
            Self(commits: a.commits + b.commits, changes: a.changes + b.changes, microseconds: a.microseconds + b.microseconds)
        }
    }

    /// The hub cannot be load-tested as asked; the message says why.
    struct Unusable: Error, CustomStringConvertible {
        let description: String
    }

    /// `http://HOST:PORT`, without a trailing slash.
    let base: String
    let host: String
    let port: Int
    /// The server's socket address, resolved once.
    let address: SocketAddress

    init(url: String) throws {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host, !host.isEmpty else {
            throw Unusable(description: "--url must look like http://HOST:PORT, not \(url).")
        }
        self.host = host
        port = components.port ?? 80
        base = "http://\(host):\(port)"
        address = try SocketAddress.makeAddressResolvingHost(host, port: port)
    }

    /// Creates (or reuses) `PREFIX-1` … `PREFIX-count` in `group` and returns them with tokens.
    func benchUsers(prefix: String, count: Int, group: String) async throws -> [BenchUser] {
        guard count > 0 else { return [] }
        let body = try JSONSerialization.data(withJSONObject: ["prefix": prefix, "count": count, "group": group])
        do {
            let answer = try await HubHTTP.post(base + "/bench/users", json: body, expecting: 201)
            return try JSONDecoder().decode([BenchUser].self, from: answer)
        } catch let error as HubHTTP.UnexpectedStatus where error.description.contains("answered 404") {
            throw Unusable(description: "The hub has no /bench/ routes: start it with --bench-routes.")
        }
    }

    /// The hub's CPU time and resident memory (`process_cpu_seconds_total`, `process_resident_memory_bytes`),
    /// and its commit counters when it has them.
    func processReading() async throws -> ProcessReading {
        let (status, body) = try await HubHTTP.get(base + "/metrics")
        guard status == 200 else { throw HubHTTP.UnexpectedStatus(description: "GET /metrics answered \(status)") }
        var cpu: Double?
        var resident: Double?
        var commits: Double?
        var changes: Double?
        var microseconds: Double?
        for line in String(decoding: body, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "process_cpu_seconds_total": cpu = Double(parts[1])
            case "process_resident_memory_bytes": resident = Double(parts[1])
            case "taxihub_commits_total": commits = Double(parts[1])
            case "taxihub_committed_changes_total": changes = Double(parts[1])
            case "taxihub_commit_microseconds_total": microseconds = Double(parts[1])
            default: break
            }
        }
        guard let cpu, let resident else {
            throw HubHTTP.UnexpectedStatus(description: "/metrics has no process_cpu_seconds_total or process_resident_memory_bytes")
        }
        var reading = ProcessReading(cpuSeconds: cpu, residentBytes: Int(resident))
        if let commits, let changes, let microseconds {
            reading.commits = CommitCounters(commits: commits, changes: changes, microseconds: microseconds)
        }
        return reading
    }

    /// The status of `GET /healthz`, or nil when the hub does not answer.
    func healthStatus() async -> Int? {
        await HubHTTP.status(of: base + "/healthz")
    }
}
