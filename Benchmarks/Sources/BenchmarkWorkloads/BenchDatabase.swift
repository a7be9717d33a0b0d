import Foundation
import PostgresClient

/// A benchmark's own database on the PostgreSQL server, created afresh (dropped first if a
/// previous run left it) and dropped at the end, so no run sees another's rows.
public struct BenchDatabase: Sendable {
    /// The database's name.
    public let name: String

    /// URL of the benchmark's database.
    public let url: String
    /// Connection to the server's `postgres` database, for CREATE and DROP DATABASE.
    private let admin: PostgresConnection

    /// Creates the database on the server that `serverURL` (a URL of any database there) points to.
    public static func create(named name: String, serverURL: String) async throws -> BenchDatabase {
        let admin = PostgresConnection(url: replacingDatabase(in: serverURL, with: "postgres"), threadName: "bench-admin")
        try await admin.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        try await admin.query("CREATE DATABASE \(name)")
        return BenchDatabase(name: name, url: replacingDatabase(in: serverURL, with: name), admin: admin)
    }

    /// The server's version, e.g. `15.18 (Debian 15.18-0+deb12u1)`.
    public func serverVersion() async throws -> String {
        try await admin.query("SHOW server_version").first?[0] ?? "unknown"
    }

    /// Runs fixed SQL (no data in it) in the benchmark's database, on a connection of its own.
    public func execute(_ sql: String) async throws {
        let connection = PostgresConnection(url: url, threadName: "bench-sql")
        try await connection.execute(script: sql)
        await connection.close()
    }

    /// Drops the database, ending any session still connected to it.
    public func drop() async throws {
        try await admin.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        await admin.close()
    }

    /// `url` naming database `name` instead: for URIs (`postgres://user@host:port/db?…`) the path is
    /// replaced; a `key=value` string gets a `dbname` that overrides any earlier one.
    public static func replacingDatabase(in url: String, with name: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url + " dbname=\(name)" }
        let rest = url[schemeEnd.upperBound...]
        let queryStart = rest.firstIndex(of: "?") ?? rest.endIndex
        let pathStart = rest[..<queryStart].firstIndex(of: "/") ?? queryStart
        return url[..<pathStart] + "/" + name + url[queryStart...]
    }
}
