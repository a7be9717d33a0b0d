import CLibPQ
import DedicatedThread
import Foundation

/// One connection to PostgreSQL through libpq, safe to share between tasks.
///
/// libpq's calls block, so the connection is an actor that runs on a thread of its own
/// (`ThreadExecutor`), never on Swift's cooperative pool: awaiting it suspends the caller
/// and leaves the cooperative threads free. Calls are served one at a time, in order.
///
/// It connects lazily, on the first call that needs the server, and again on the first call after
/// the connection broke (server restarted, backend terminated), so a caller that retries after an
/// outage finds a working connection. A call that was under way when the connection broke fails
/// with `PostgresError.Kind.connection`; `retryingOnConnectionLoss(_:)` runs idempotent work once
/// more on a new connection.
///
/// Statements take their values as parameters (`$1`, `$2`, … sent in the text format), never
/// spliced into the SQL. Several statements that must be atomic go in `transaction(_:)`; to call
/// more than one method without another caller's calls in between, call them inside one closure
/// (`transaction`, `retryingOnConnectionLoss`), which runs on the connection's thread.
public actor PostgresConnection {
    /// How long connecting may take, unless the URL sets `connect_timeout` itself.
    public static let defaultConnectTimeoutSeconds = 10

    private let url: String
    private let executor: ThreadExecutor
    /// The libpq connection, nil until the first connect and after `close()`.
    private var owned: LibPQConnection?
    /// The `PGconn *` of `owned`.
    private var handle: OpaquePointer? { owned?.pointer }

    /// The kernel id of the thread this connection's libpq calls run on.
    nonisolated var threadID: pthread_t? {
        executor.threadID
    }

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    /// A connection to `url`, made on first use. `url` is anything `PQconnectdb` takes: a URI
    /// (`postgres://user:password@host:port/database?sslmode=disable`, a unix socket as
    /// `postgres:///database?host=/run/postgresql` or `postgres://%2Frun%2Fpostgresql/database`)
    /// or a `key=value` string. `threadName` names its thread (at most 15 bytes count on Linux);
    /// `niceness` above 0 lowers that thread's scheduling priority (see `ThreadExecutor`).
    public init(url: String, threadName: String = "taxihub-pg", niceness: Int32 = 0) {
        self.url = url
        self.executor = ThreadExecutor(name: threadName, niceness: niceness)
    }

    /// A connection to `url`, connected now (so a wrong URL or a server that is down shows at once).
    public static func connect(url: String) async throws -> PostgresConnection {
        let connection = PostgresConnection(url: url)
        try await connection.connect()
        return connection
    }

    deinit {
        // `owned`, released with the actor, closes the libpq connection itself.
        executor.shutdown()
    }

    /// Whether the connection is open and, as far as libpq knows, usable.
    public var isConnected: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// The server process serving this connection, nil when not connected.
    public var backendPID: Int32? {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return nil }
        return PQbackendPID(handle)
    }

    /// Connects, unless already connected with a healthy connection. A broken connection is
    /// replaced.
    public func connect() throws {
        _ = try connectedHandle()
    }

    /// Closes the connection; the next call connects again.
    public func close() {
        owned = nil
    }

    // MARK: - Statements

    /// Runs one statement with `parameters` bound to `$1`, `$2`, … (text format; nil is NULL) and
    /// returns its rows. The server infers each parameter's type from its use; cast in the SQL
    /// (`$1::uuid`) where it cannot.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresTextEncodable)?] = []) throws -> PostgresRows {
        let handle = try connectedHandle()
        guard parameters.count <= Int(UInt16.max) else {
            throw PostgresError(
                kind: .client, message: "\(parameters.count) parameters; a statement takes at most \(UInt16.max)"
            )
        }
        var copies: [UnsafeMutablePointer<CChar>?] = []
        copies.reserveCapacity(parameters.count)
        defer { copies.forEach { free($0) } }
        for (index, parameter) in parameters.enumerated() {
            guard let parameter else {
                copies.append(nil)
                continue
            }
            let text = parameter.postgresText
            guard let copy = strdup(text) else {
                throw PostgresError(kind: .client, message: "out of memory copying parameter $\(index + 1)")
            }
            copies.append(copy)
            // libpq sends text parameters up to their first NUL; PostgreSQL text cannot hold NUL anyway.
            guard strlen(copy) == text.utf8.count else {
                throw PostgresError(
                    kind: .client, sqlState: .characterNotInRepertoire,
                    message: "parameter $\(index + 1) contains a NUL character, which PostgreSQL text cannot hold"
                )
            }
        }
        let values = copies.map { $0.map { UnsafePointer($0) } }
        let result = PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        return try rows(of: result, handle: handle)
    }

    /// Runs `sql`, which may hold several statements separated by semicolons, through the simple
    /// query protocol, and returns the last statement's rows. It takes no parameters: use it for
    /// fixed SQL (migrations, settings), never for SQL that contains data.
    @discardableResult
    public func execute(script sql: String) throws -> PostgresRows {
        let handle = try connectedHandle()
        return try rows(of: PQexec(handle, sql), handle: handle)
    }

    /// Runs `body` in a transaction: `BEGIN`, then `body`, then `COMMIT`; if `body` throws, or the
    /// server aborted the transaction, it is rolled back and the error is thrown. Transactions do
    /// not nest.
    public func transaction<T: Sendable>(_ body: @Sendable (isolated PostgresConnection) throws -> T) throws -> T {
        let handle = try connectedHandle()
        guard PQtransactionStatus(handle) == PQTRANS_IDLE else {
            throw PostgresError(kind: .client, message: "a transaction is already open on this connection")
        }
        try query("BEGIN")
        do {
            let value = try body(self)
            let commit = try query("COMMIT")
            // COMMIT of a transaction that failed earlier (an error the body caught) rolls back.
            guard commit.commandTag == "COMMIT" else {
                throw PostgresError(
                    kind: .client, message: "the transaction was rolled back: a statement in it had failed"
                )
            }
            return value
        } catch {
            rollbackIfOpen()
            throw error
        }
    }

    /// Runs `body`; if it fails because the connection was lost (see `PostgresError.isConnectionLost`)
    /// on a connection that had been working, connects again and runs `body` once more.
    ///
    /// Only for work that is safe to repeat: reads, or writes that upsert the same values. A
    /// connection lost during `COMMIT` leaves it unknown whether the first run committed.
    public func retryingOnConnectionLoss<T: Sendable>(
        _ body: @Sendable (isolated PostgresConnection) throws -> T
    ) throws -> T {
        let wasConnected = isConnected
        do {
            return try body(self)
        } catch let error as PostgresError where error.isConnectionLost && wasConnected {
            close()
            return try body(self)
        }
    }

    // MARK: - COPY

    /// Runs `sql`, a `COPY … FROM STDIN (FORMAT binary)`, and streams the rows that `body` writes;
    /// returns how many rows the server copied. If `body` throws, the COPY is
    /// aborted (which fails the transaction it is in) and the error is thrown.
    @discardableResult
    public func copyIn(_ sql: String, _ body: (inout PostgresCopyWriter) throws -> Void) throws -> Int {
        let handle = try connectedHandle()
        guard let start = PQexec(handle, sql) else {
            throw connectionError(handle, fallback: "could not send the COPY statement")
        }
        let status = PQresultStatus(start)
        guard status == PGRES_COPY_IN else {
            defer { PQclear(start) }
            if status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR || status == PGRES_BAD_RESPONSE {
                throw error(from: start, handle: handle)
            }
            abandonCopy(handle, status: status)
            throw PostgresError(kind: .client, message: "not a COPY … FROM STDIN statement: \(sql)")
        }
        PQclear(start)

        var writer = PostgresCopyWriter(handle: handle)
        do {
            try body(&writer)
            try writer.finish()
        } catch {
            if PQstatus(handle) == CONNECTION_OK {
                _ = PQputCopyEnd(handle, "COPY aborted by the client")
                drainResults(handle)
            }
            throw error
        }
        guard PQputCopyEnd(handle, nil) == 1 else {
            let failure = connectionError(handle, fallback: "could not end the COPY")
            drainResults(handle)
            throw failure
        }
        var failure: PostgresError?
        var copied: Int?
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK:
                copied = Int(String(cString: PQcmdTuples(result)))
            case PGRES_COPY_IN:
                // Cannot happen after PQputCopyEnd succeeded; end it rather than loop forever.
                _ = PQputCopyEnd(handle, "unexpected COPY state")
            default:
                failure = failure ?? error(from: result, handle: handle)
            }
        }
        if let failure { throw failure }
        if PQstatus(handle) != CONNECTION_OK {
            throw connectionError(handle, fallback: "the connection broke during COPY")
        }
        return copied ?? writer.rowCount
    }

    // MARK: - Internals

    /// The open connection, connecting (or replacing a broken one) first when needed.
    private func connectedHandle() throws -> OpaquePointer {
        if let handle {
            if PQstatus(handle) == CONNECTION_OK { return handle }
            owned = nil
        }
        // Keywords before `dbname` are defaults the URL may override; those after it win over the URL.
        let parameters: [(String, String)] = [
            ("connect_timeout", String(Self.defaultConnectTimeoutSeconds)),
            ("fallback_application_name", "taxi-hub"),
            ("dbname", url),
            // Swift strings are UTF-8, so the connection must be too.
            ("client_encoding", "UTF8"),
        ]
        let keywords = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordList = keywords.map { $0.map { UnsafePointer($0) } } + [nil]
        let valueList = values.map { $0.map { UnsafePointer($0) } } + [nil]
        guard let connection = PQconnectdbParams(keywordList, valueList, 1) else {
            throw PostgresError(kind: .connection, message: "out of memory allocating a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(connection)) ?? "could not connect"
            PQfinish(connection)
            throw PostgresError(kind: .connection, message: message)
        }
        // libpq prints notices (`relation already exists, skipping`) to stderr by default.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        let owner = LibPQConnection(connection)
        // Doubles come back exact whatever the server's configured default: PostgreSQL 12 and
        // later print the shortest exact text for any positive setting, older servers 17 digits.
        _ = try rows(of: PQexec(connection, "SET extra_float_digits = 3"), handle: connection)
        owned = owner
        return connection
    }

    /// The rows of a statement's result, or its error; clears the result.
    private func rows(of result: OpaquePointer?, handle: OpaquePointer) throws -> PostgresRows {
        guard let result else {
            throw connectionError(handle, fallback: "no result from the server")
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            break
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            abandonCopy(handle, status: status)
            throw PostgresError(kind: .client, message: "COPY needs copyIn(_:_:)")
        default:
            throw error(from: result, handle: handle)
        }
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        var values: [String?] = []
        values.reserveCapacity(Int(rowCount) * Int(columnCount))
        for row in 0..<rowCount {
            for column in 0..<columnCount {
                if PQgetisnull(result, row, column) == 1 {
                    values.append(nil)
                } else {
                    let length = Int(PQgetlength(result, row, column))
                    let bytes = UnsafeRawPointer(PQgetvalue(result, row, column)!).assumingMemoryBound(to: UInt8.self)
                    values.append(String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self))
                }
            }
        }
        return PostgresRows(
            columns: columns, values: values, commandTag: String(cString: PQcmdStatus(result)),
            affectedRows: Int(String(cString: PQcmdTuples(result)))
        )
    }

    /// The error a failed result carries, as a connection error when the connection broke with it.
    private func error(from result: OpaquePointer, handle: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            Self.trimmed(PQresultErrorField(result, Int32(code.asciiValue!)))
        }
        let sqlState = field("C").map(SQLState.init(rawValue:))
        let message = field("M") ?? Self.trimmed(PQresultErrorMessage(result)) ?? Self.trimmed(PQerrorMessage(handle))
        let lost = PQstatus(handle) != CONNECTION_OK
        return PostgresError(
            kind: lost ? .connection : .server, sqlState: sqlState, message: message ?? "unknown error",
            detail: field("D"), hint: field("H")
        )
    }

    private func connectionError(_ handle: OpaquePointer, fallback: String) -> PostgresError {
        let message = Self.trimmed(PQerrorMessage(handle)) ?? fallback
        return PostgresError(kind: PQstatus(handle) == CONNECTION_OK ? .client : .connection, message: message)
    }

    /// Ends a COPY that nobody will feed or read, so the connection is usable again.
    private func abandonCopy(_ handle: OpaquePointer, status: ExecStatusType) {
        if status == PGRES_COPY_IN || status == PGRES_COPY_BOTH {
            _ = PQputCopyEnd(handle, "COPY not expected here")
        }
        if status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
            var buffer: UnsafeMutablePointer<CChar>?
            while PQgetCopyData(handle, &buffer, 0) > 0 {
                PQfreemem(buffer)
            }
        }
        drainResults(handle)
    }

    private func drainResults(_ handle: OpaquePointer) {
        while let result = PQgetResult(handle) {
            PQclear(result)
        }
    }

    private func rollbackIfOpen() {
        guard let handle, PQstatus(handle) == CONNECTION_OK, PQtransactionStatus(handle) != PQTRANS_IDLE else {
            return
        }
        if let result = PQexec(handle, "ROLLBACK") {
            PQclear(result)
        }
    }

    private static func trimmed(_ text: UnsafePointer<CChar>?) -> String? {
        guard let text else { return nil }
        let string = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
        return string.isEmpty ? nil : string
    }
}

/// Owns one libpq connection (`PGconn *`) and closes it when released. Only its
/// `PostgresConnection` holds it, and uses it only on that actor's thread.
private final class LibPQConnection {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        PQfinish(pointer)
    }
}

/// Streams rows into a running `COPY … FROM STDIN (FORMAT binary)`; handed out by
/// `PostgresConnection.copyIn(_:_:)`. Each field goes as the bytes of its column type
/// (`PostgresBinaryEncodable`), nil as NULL, so the server parses no text: for 100,000 trips that
/// took the backend's and this thread's CPU during a snapshot down by half (docs/benchmarks-history.md).
///
/// It cannot be copied, so it cannot outlive the `copyIn` call that lent it.
public struct PostgresCopyWriter: ~Copyable {
    /// Initial buffer capacity.
    static let chunkSize = 1 << 20
    /// `PGCOPY\n\377\r\n\0`, then no flags and no header extension.
    private static let header: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [UInt8](repeating: 0, count: 8)

    /// The connection the rows go to; nil for a writer that only encodes (`unsent()`).
    private let handle: OpaquePointer?
    private var buffer: [UInt8] = []
    /// Where the current row's field count goes, once the row ends.
    private var rowStart: Int?
    private var fieldsInRow: Int16 = 0
    /// Rows ended so far.
    public private(set) var rowCount = 0

    init(handle: OpaquePointer?) {
        self.handle = handle
        buffer.reserveCapacity(Self.chunkSize + 4096)
        buffer.append(contentsOf: Self.header)
    }

    /// A writer with no connection, which only encodes: for measuring the encoding alone (the
    /// micro-benchmarks under `Benchmarks/`, through Persistence). `finish` would throw.
    package static func unsent() -> PostgresCopyWriter {
        PostgresCopyWriter(handle: nil)
    }

    /// Appends the next field of the current row (nil is NULL).
    public mutating func append(_ value: (any PostgresBinaryEncodable)?) throws {
        beginRowIfNeeded()
        guard fieldsInRow < Int16.max else {
            throw PostgresError(kind: .client, message: "a COPY row holds at most \(Int16.max) fields")
        }
        fieldsInRow += 1
        guard let value else {
            Int32(-1).appendPostgresBinary(to: &buffer)
            return
        }
        let lengthAt = buffer.count
        buffer.append(contentsOf: [0, 0, 0, 0])
        value.appendPostgresBinary(to: &buffer)
        let length = buffer.count - lengthAt - 4
        guard length <= Int32.max else {
            throw PostgresError(kind: .client, message: "a COPY field is larger than PostgreSQL takes (\(length) bytes)")
        }
        withUnsafeBytes(of: Int32(length).bigEndian) { bytes in
            buffer.replaceSubrange(lengthAt..<lengthAt + 4, with: bytes)
        }
    }

    /// Ends the current row. Rows are sent when the body is done, not while it encodes: encoding
    /// and the server's parsing then never take a core each at the same time, which keeps a
    /// large snapshot from crowding the threads that serve sockets on a small machine (it halved
    /// the WebSocket p99 during 100k-trip snapshots, see docs/benchmarks-history.md). The price is memory:
    /// the whole COPY is held at once, about 20 MB for 100,000 trips.
    public mutating func endRow() throws {
        let start = beginRowIfNeeded()
        withUnsafeBytes(of: fieldsInRow.bigEndian) { bytes in
            buffer.replaceSubrange(start..<start + 2, with: bytes)
        }
        rowStart = nil
        fieldsInRow = 0
        rowCount += 1
    }

    /// Opens a row (room for its field count) unless one is open; returns where it starts.
    @discardableResult
    private mutating func beginRowIfNeeded() -> Int {
        if let rowStart { return rowStart }
        rowStart = buffer.count
        buffer.append(contentsOf: [0, 0])
        return buffer.count - 2
    }

    /// Appends a whole row (nil is NULL) and ends it.
    public mutating func appendRow(_ fields: [(any PostgresBinaryEncodable)?]) throws {
        for field in fields {
            try append(field)
        }
        try endRow()
    }

    /// Ends the data (the trailer) and sends what is buffered.
    mutating func finish() throws {
        guard let handle else {
            throw PostgresError(kind: .client, message: "this COPY writer has no connection to send to")
        }
        buffer.append(contentsOf: [0xFF, 0xFF])  // a field count of -1
        let sent = buffer.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                PQputCopyData(handle, chars.baseAddress, Int32(chars.count))
            }
        }
        guard sent == 1 else {
            let message = PQerrorMessage(handle).map { String(cString: $0) } ?? ""
            throw PostgresError(
                kind: PQstatus(handle) == CONNECTION_OK ? .client : .connection,
                message: message.isEmpty ? "could not send COPY data" : message
            )
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
