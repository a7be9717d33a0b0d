import Foundation
import TestSupport
import Testing

@testable import PostgresClient

/// The libpq wrapper against a real server: parameters, COPY, transactions, typed errors,
/// reconnection and the thread it runs on.
@Suite("PostgreSQL connection", MachineLoad.shared)
struct PostgresConnectionTests {
    /// Texts that break naive quoting or escaping in SQL, COPY or array literals.
    static let trickyTexts = Samples.trickyTexts

    /// Runs `body` with a connection to a fresh schema of its own, and that schema's URL.
    private static func withConnection(
        _ body: (PostgresConnection, String) async throws -> Void
    ) async throws {
        try await PostgresTestServer.shared.withSchema { url in
            let connection = PostgresConnection(url: url)
            try await body(connection, url)
            await connection.close()
        }
    }

    @Test("a server error carries its SQLSTATE, and the connection stays usable")
    func typedErrors() async throws {
        try await Self.withConnection { connection, _ in
            try await connection.query("CREATE TABLE people (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
            try await connection.query("INSERT INTO people VALUES ($1, $2)", [1, "ann"])

            let duplicate = await #expect(throws: PostgresError.self) {
                try await connection.query("INSERT INTO people VALUES ($1, $2)", [1, "bob"])
            }
            #expect(duplicate?.sqlState == .uniqueViolation)
            #expect(duplicate?.kind == .server)
            #expect(duplicate?.isConnectionLost == false)
            #expect(duplicate?.message.contains("people_pkey") == true)
            #expect(duplicate?.detail == "Key (id)=(1) already exists.")

            let syntax = await #expect(throws: PostgresError.self) {
                try await connection.query("SELEKT 1")
            }
            #expect(syntax?.sqlState == .syntaxError)
            #expect(syntax?.sqlState?.errorClass == "42")

            let missing = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT * FROM nowhere")
            }
            #expect(missing?.sqlState == .undefinedTable)

            let notNull = await #expect(throws: PostgresError.self) {
                try await connection.query("INSERT INTO people VALUES ($1, $2)", [2, nil])
            }
            #expect(notNull?.sqlState == .notNullViolation)

            let badNumber = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT $1::bigint", ["twelve"])
            }
            #expect(badNumber?.sqlState == "22P02")

            let rows = try await connection.query("SELECT name FROM people")
            #expect(rows.map { $0[0] } == ["ann"])
        }
    }

    @Test("parameters are data: quotes, unicode and SQL injection attempts round-trip unchanged")
    func parameters() async throws {
        try await Self.withConnection { connection, _ in
            try await connection.query("CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT)")
            for (index, text) in Self.trickyTexts.enumerated() {
                let echoed = try await connection.query("SELECT $1::text AS echoed", [text])
                #expect(echoed.first?["echoed"] == text)
                try await connection.query("INSERT INTO notes (id, body) VALUES ($1, $2)", [index, text])
            }
            try await connection.query("INSERT INTO notes (id, body) VALUES ($1, $2)", [-1, nil])

            let rows = try await connection.query("SELECT id, body FROM notes WHERE id >= 0 ORDER BY id")
            #expect(rows.map { $0[1] } == Self.trickyTexts)
            for (index, text) in Self.trickyTexts.enumerated() {
                let found = try await connection.query("SELECT id FROM notes WHERE body = $1", [text])
                #expect(try found.map { try $0.decode(Int.self, at: 0) } == [index])
            }
            let null = try await connection.query("SELECT body FROM notes WHERE id = $1", [-1])
            #expect(null.count == 1)
            #expect(null[0][0] == nil)
            #expect(try null[0].decodeIfPresent(String.self, at: 0) == nil)
        }
    }

    @Test("typed values and arrays round-trip through text parameters")
    func typedValues() async throws {
        try await Self.withConnection { connection, _ in
            let uuid = UUID()
            let row = try await connection.query(
                "SELECT $1::uuid, $2::bigint, $3::bigint, $4::boolean, $5::integer",
                [uuid, Int64.min, Int.max, true, Int32(-7)]
            )[0]
            #expect(try row.decode(UUID.self, at: 0) == uuid)
            #expect(row[0] == uuid.uuidString.lowercased())
            #expect(try row.decode(Int64.self, at: 1) == Int64.min)
            #expect(try row.decode(Int.self, at: 2) == Int.max)
            #expect(try row.decode(Bool.self, at: 3))
            #expect(try row.decode(Int32.self, at: 4) == -7)

            let doubles: [Double] = [
                0, -0.0, 0.1, 1 / 3, .pi, -123.456, 1e-300, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                .infinity, -.infinity, 47.376_887_1, 8.541_694_3,
            ]
            for value in doubles {
                let echoed = try await connection.query("SELECT $1::double precision", [value])[0]
                #expect(try echoed.decode(Double.self, at: 0).bitPattern == value.bitPattern, "\(value)")
            }
            // Set by the connection, so a server configured to round floats cannot.
            #expect(try await connection.query("SHOW extra_float_digits")[0][0] == "3")
            let nan = try await connection.query("SELECT $1::double precision", [Double.nan])[0]
            #expect(try nan.decode(Double.self, at: 0).isNaN)

            let elements: [String?] = Self.trickyTexts + [nil]
            let unnested = try await connection.query(
                "SELECT element FROM unnest($1::text[]) WITH ORDINALITY AS u(element, position) ORDER BY position",
                [PostgresArray(elements)]
            )
            #expect(unnested.map { $0[0] } == elements)
            let numbers = try await connection.query("SELECT array_length($1::bigint[], 1)", [PostgresArray([1, 2, 3])])
            #expect(numbers[0][0] == "3")

            let failure = #expect(throws: PostgresError.self) { try row.decode(UUID.self, at: 1) }
            #expect(failure?.kind == .client)
        }
    }

    @Test("a NUL character in a parameter is refused before it is silently cut")
    func nulParameter() async throws {
        try await Self.withConnection { connection, _ in
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT $1::text", ["before\u{0}after"])
            }
            #expect(error?.kind == .client)
            #expect(error?.sqlState == .characterNotInRepertoire)
            let after = try await connection.query("SELECT 1")
            #expect(after[0][0] == "1")
        }
    }

    @Test("binary COPY round-trips tabs, newlines, backslashes, quotes, unicode and NULL")
    func copyRoundTrip() async throws {
        try await Self.withConnection { connection, _ in
            try await connection.query("CREATE TABLE lines (id BIGINT PRIMARY KEY, body TEXT, note TEXT)")
            let texts = Self.trickyTexts
            let copied = try await connection.copyIn("COPY lines (id, body, note) FROM STDIN (FORMAT binary)") { writer in
                for (index, text) in texts.enumerated() {
                    try writer.append(index)
                    try writer.append(text)
                    try writer.append(index.isMultiple(of: 2) ? nil : "note \(text)")
                    try writer.endRow()
                }
                try writer.appendRow([-1, nil, ""])
            }
            #expect(copied == texts.count + 1)

            let rows = try await connection.query("SELECT id, body, note FROM lines ORDER BY id")
            #expect(rows.count == texts.count + 1)
            #expect(rows[0][1] == nil)
            #expect(rows[0][2] == "")
            for (index, text) in texts.enumerated() {
                let row = rows[index + 1]
                #expect(row[0] == String(index))
                #expect(row[1] == text)
                #expect(row[2] == (index.isMultiple(of: 2) ? nil : "note \(text)"))
            }
        }
    }

    @Test("binary COPY carries every value of each type exactly: uuid, float8, bigint, integer, boolean")
    func copyTypes() async throws {
        let doubles: [Double] = [
            0, -0.0, 1, -1, .pi, 52.520_008_123_456_78, 13.404_954_1, .ulpOfOne, .leastNonzeroMagnitude,
            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .infinity, -.infinity, .nan,
        ]
        let ids = [UUID(), UUID(), try #require(UUID(uuidString: "00000000-0000-0000-0000-000000000000"))]
        try await Self.withConnection { connection, _ in
            try await connection.query("CREATE TABLE kinds (n INT PRIMARY KEY, u UUID, d FLOAT8, b BIGINT, i INTEGER, f BOOLEAN)")
            try await connection.copyIn("COPY kinds (n, u, d, b, i, f) FROM STDIN (FORMAT binary)") { writer in
                for (index, double) in doubles.enumerated() {
                    let values: [(any PostgresBinaryEncodable)?] = [
                        Int32(index), ids[index % ids.count], double, Int64.min + Int64(index), Int32.max - Int32(index),
                        index.isMultiple(of: 2),
                    ]
                    try writer.appendRow(values)
                }
            }
            let rows = try await connection.query("SELECT n, u, d, b, i, f FROM kinds ORDER BY n")
            #expect(rows.count == doubles.count)
            for (index, double) in doubles.enumerated() {
                let row = rows[index]
                #expect(try row.decode(UUID.self, at: 1) == ids[index % ids.count])
                let stored = try row.decode(Double.self, at: 2)
                #expect(stored.bitPattern == double.bitPattern || (stored.isNaN && double.isNaN), "\(double)")
                #expect(try row.decode(Int64.self, at: 3) == Int64.min + Int64(index))
                #expect(try row.decode(Int32.self, at: 4) == Int32.max - Int32(index))
                #expect(try row.decode(Bool.self, at: 5) == index.isMultiple(of: 2))
            }
        }
    }

    @Test("a COPY the server rejects, or the client aborts, fails cleanly and leaves the connection usable")
    func copyFailures() async throws {
        struct Abort: Error {}
        try await Self.withConnection { connection, _ in
            try await connection.query("CREATE TABLE numbers (n BIGINT NOT NULL)")
            try await connection.query("CREATE TABLE notes (t TEXT)")
            let copy = "COPY numbers (n) FROM STDIN (FORMAT binary)"
            // A row of two fields for one column, then four bytes where bigint takes eight.
            let rejected = await #expect(throws: PostgresError.self) {
                try await connection.copyIn(copy) { writer in
                    try writer.appendRow([1])
                    try writer.appendRow([2, 3])
                }
            }
            #expect(rejected?.sqlState == "22P04")
            #expect(rejected?.kind == .server)
            let short = await #expect(throws: PostgresError.self) {
                try await connection.copyIn(copy) { writer in
                    try writer.appendRow([Int32(2)])
                }
            }
            #expect(short?.kind == .server)

            await #expect(throws: Abort.self) {
                try await connection.copyIn(copy) { writer in
                    try writer.appendRow([1])
                    throw Abort()
                }
            }
            let nul = await #expect(throws: PostgresError.self) {
                try await connection.copyIn("COPY notes (t) FROM STDIN (FORMAT binary)") { writer in
                    try writer.appendRow(["1\u{0}"])
                }
            }
            #expect(nul?.sqlState == .characterNotInRepertoire)
            // Text where binary is announced.
            await #expect(throws: PostgresError.self) {
                try await connection.copyIn("COPY numbers (n) FROM STDIN") { writer in
                    try writer.appendRow([1])
                }
            }

            let notCopy = await #expect(throws: PostgresError.self) {
                try await connection.copyIn("SELECT 1") { _ in }
            }
            #expect(notCopy?.kind == .client)
            await #expect(throws: PostgresError.self) { try await connection.query("COPY numbers (n) FROM STDIN") }

            #expect(try await connection.query("SELECT count(*) FROM numbers")[0][0] == "0")
            #expect(try await connection.query("SELECT count(*) FROM notes")[0][0] == "0")
            let large = try await connection.copyIn(copy) { writer in
                for n in 0..<200_000 {
                    try writer.append(n)
                    try writer.endRow()
                }
            }
            #expect(large == 200_000)
            #expect(try await connection.query("SELECT count(*), sum(n) FROM numbers")[0][1] == "19999900000")
        }
    }

    @Test("transactions commit, roll back on a thrown error, and refuse to commit after a failed statement")
    func transactions() async throws {
        struct Failure: Error {}
        try await Self.withConnection { connection, _ in
            try await connection.query("CREATE TABLE items (id BIGINT PRIMARY KEY)")
            let committed = try await connection.transaction { connection in
                try connection.query("INSERT INTO items VALUES ($1)", [1])
                try connection.query("INSERT INTO items VALUES ($1)", [2])
                return try connection.query("SELECT count(*) FROM items")[0][0]
            }
            #expect(committed == "2")

            await #expect(throws: Failure.self) {
                try await connection.transaction { connection in
                    try connection.query("INSERT INTO items VALUES ($1)", [3])
                    throw Failure()
                }
            }
            let swallowed = await #expect(throws: PostgresError.self) {
                try await connection.transaction { connection in
                    try connection.query("INSERT INTO items VALUES ($1)", [4])
                    _ = try? connection.query("INSERT INTO items VALUES ($1)", [1])
                }
            }
            #expect(swallowed?.kind == .client)
            let nested = await #expect(throws: PostgresError.self) {
                try await connection.transaction { connection in
                    try connection.transaction { _ in }
                }
            }
            #expect(nested?.kind == .client)

            let ids = try await connection.query("SELECT id FROM items ORDER BY id").map { $0[0] }
            #expect(ids == ["1", "2"])
        }
    }

    @Test("after the server ends the session, the failed call reports it and the next one reconnects")
    func reconnectAfterTermination() async throws {
        try await Self.withConnection { connection, url in
            let killer = PostgresConnection(url: url)
            let first = try #require(try await Self.backend(of: connection))

            try await killer.query("SELECT pg_terminate_backend($1)", [first])
            let lost = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
            #expect(lost?.isConnectionLost == true)
            #expect(lost?.kind == .connection)

            let second = try #require(try await Self.backend(of: connection))
            #expect(second != first)

            try await killer.query("SELECT pg_terminate_backend($1)", [second])
            let answer = try await connection.retryingOnConnectionLoss { connection in
                try connection.query("SELECT 42")[0][0]
            }
            #expect(answer == "42")
            #expect(try await Self.backend(of: connection) != second)
            await killer.close()
        }
    }

    /// The server process serving `connection`, asked through the connection itself.
    private static func backend(of connection: PostgresConnection) async throws -> Int32? {
        try await connection.query("SELECT pg_backend_pid()")[0].decode(Int32.self, at: 0)
    }

    @Test("a server that cannot be reached is a connection error without SQLSTATE")
    func unreachable() async throws {
        let port = try FreePort.find()
        let connection = PostgresConnection(url: "postgres://postgres@127.0.0.1:\(port)/taxihub")
        let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
        #expect(error?.kind == .connection)
        #expect(error?.isConnectionLost == true)
        #expect(error?.sqlState == nil)
        #expect(error?.message.contains("\(port)") == true)
        #expect(await connection.isConnected == false)

        let bad = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect(url: "postgres://postgres@127.0.0.1:\(port)/taxihub?nonsense=1")
        }
        #expect(bad?.kind == .connection)
    }

    @Test("connects through a unix socket URL too")
    func unixSocket() async throws {
        try await Self.withConnection { connection, _ in
            let settings = try await connection.query(
                "SELECT current_setting('unix_socket_directories'), current_setting('port'), current_database(), current_user"
            )[0]
            guard let directories = settings[0], let directory = directories.split(separator: ",").first,
                let port = settings[1], let database = settings[2], let user = settings[3]
            else {
                Issue.record("the server reports no unix socket directory")
                return
            }
            let socketDirectory = directory.trimmingCharacters(in: .whitespaces)
            for url in [
                "postgres:///\(database)?host=\(socketDirectory)&port=\(port)&user=\(user)",
                "postgresql://\(user)@\(socketDirectory.replacingOccurrences(of: "/", with: "%2F")):\(port)/\(database)",
                "host=\(socketDirectory) port=\(port) dbname=\(database) user=\(user)",
            ] {
                let local = try await PostgresConnection.connect(url: url)
                let row = try await local.query("SELECT current_database(), inet_server_addr() IS NULL")[0]
                #expect(row[0] == database, "\(url)")
                #expect(row[1] == "t", "\(url) should not be TCP")
                await local.close()
            }
        }
    }

    @Test("a connection made with a niceness runs its calls at that lower priority, others at the normal one")
    func niceThread() async throws {
        try await PostgresTestServer.shared.withSchema { url in
            let background = PostgresConnection(url: url, threadName: "pg-test-nice", niceness: 10)
            let normal = PostgresConnection(url: url, threadName: "pg-test-normal")
            let base = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            for (connection, expected) in [(background, min(19, base + 10)), (normal, base)] {
                let niceness = try await connection.retryingOnConnectionLoss { connection in
                    _ = try connection.query("SELECT 1")
                    return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
                }
                #expect(niceness == expected)
                await connection.close()
            }
        }
    }

    @Test("libpq calls run on the connection's own thread, not on Swift's cooperative pool")
    func ownThread() async throws {
        try await PostgresTestServer.shared.withSchema { url in
            let connection = PostgresConnection(url: url, threadName: "pg-test-thread")
            // Compared by kernel thread id: Foundation's Thread.current.name proved unreliable for
            // threads it did not create the Thread object of in time.
            let thread = try await connection.retryingOnConnectionLoss { connection in
                _ = try connection.query("SELECT 1")
                return pthread_self()
            }
            #expect(thread == connection.threadID)
            // Many concurrent callers are served one at a time, all answered.
            let answers = try await withThrowingTaskGroup(of: String?.self) { group in
                for index in 0..<50 {
                    group.addTask { try await connection.query("SELECT $1::bigint * 2", [index])[0][0] }
                }
                return try await group.reduce(into: Set<String?>()) { $0.insert($1) }
            }
            #expect(answers == Set((0..<50).map { String($0 * 2) }))
            await connection.close()
        }
    }

    #if os(Linux)
    @Test("a released connection closes its session and ends its thread")
    func releasedConnectionsEndTheirThreads() async throws {
        try await PostgresTestServer.shared.withSchema { url in
            // Only this test's threads count: other suites start and end threads meanwhile.
            let threadName = "pg-release-test"
            func threadCount() throws -> Int {
                try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count { task in
                    let comm = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)
                    return comm?.trimmingCharacters(in: .whitespacesAndNewlines) == threadName
                }
            }
            // The test's sessions share its application name; the checker leaves its own out.
            let checker = PostgresConnection(url: url)
            func sessions() async throws -> String? {
                try await checker.query(
                    """
                    SELECT count(*) FROM pg_stat_activity
                    WHERE application_name = current_setting('application_name') AND pid <> pg_backend_pid()
                    """
                )[0][0]
            }
            var live = 0
            for _ in 0..<20 {
                let connection = PostgresConnection(url: url, threadName: threadName)
                _ = try await connection.query("SELECT 1")
                live = max(live, try threadCount())
            }
            #expect(live >= 1, "the connections' threads carry the test's name")
            var after = try threadCount()
            let deadline = ContinuousClock.now + .seconds(10)
            while after > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                after = try threadCount()
            }
            #expect(after == 0, "\(after) of 20 released connections' threads still running")
            var open = try await sessions()
            while open != "0", ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                open = try await sessions()
            }
            #expect(open == "0")
            await checker.close()
        }
    }
    #endif
}
