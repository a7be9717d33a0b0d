import PostgresClient

/// Upserts rows of one entity into its table by primary key (the leading columns), in batches.
package struct PostgresUpsert<Row: Sendable>: Sendable {
    package let table: String
    /// Every column with its SQL type, the primary key's columns first.
    package let columns: [(name: String, type: String)]
    /// How many leading `columns` make up the primary key.
    package var keyCount = 1
    package var onConflict = ConflictAction.update
    /// With `.update`: a further condition a stored row (`t`) must meet to take the incoming
    /// values (`EXCLUDED`); a row that fails it is left as it is. Nil: no condition.
    package var fence: String? = nil
    /// One entity's column values, in `columns` order (nil is NULL).
    package let fields: @Sendable (Row) -> [(any PostgresEncodable)?]

    package init(
        table: String, columns: [(name: String, type: String)], keyCount: Int = 1, onConflict: ConflictAction = .update,
        fence: String? = nil, fields: @escaping @Sendable (Row) -> [(any PostgresEncodable)?]
    ) {
        self.table = table
        self.columns = columns
        self.keyCount = keyCount
        self.onConflict = onConflict
        self.fence = fence
        self.fields = fields
    }

    /// Parameters in one multi-row `INSERT`: PostgreSQL's limit is 65,535.
    static var maxParameters: Int { 60_000 }

    /// The column names, comma-separated, in `columns` order.
    package var columnList: String { columns.map(\.name).joined(separator: ", ") }

    private var keyList: String { columns.prefix(keyCount).map(\.name).joined(separator: ", ") }

    /// `INSERT INTO table AS t (columns) <source> ON CONFLICT (key) DO UPDATE …`, skipping rows
    /// whose stored values are already the same; or `… DO NOTHING` for rows that are kept.
    func upsertSQL(source: String) -> String {
        let insert = "INSERT INTO \(table) AS t (\(columnList)) \(source) ON CONFLICT (\(keyList)) "
        switch onConflict {
        case .keep:
            return insert + "DO NOTHING"
        case .update:
            let others = columns.dropFirst(keyCount).map(\.name)
            let assignments = others.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
            let stored = others.map { "t.\($0)" }.joined(separator: ", ")
            let incoming = others.map { "EXCLUDED.\($0)" }.joined(separator: ", ")
            let changed = "(\(stored)) IS DISTINCT FROM (\(incoming))"
            let condition = fence.map { "\(changed) AND (\($0))" } ?? changed
            return insert + "DO UPDATE SET \(assignments) WHERE \(condition)"
        }
    }

    /// Writes `rows` inside the caller's transaction; returns how many rows were inserted or
    /// updated (fewer than `rows.count` when stored rows were unchanged, kept or fenced off).
    @discardableResult
    package func write(_ rows: [Row], copyThreshold: Int, on connection: isolated PostgresConnection) throws -> Int {
        guard !rows.isEmpty else { return 0 }
        if rows.count >= copyThreshold {
            return try writeThroughStaging(rows, on: connection)
        } else {
            return try writeValues(rows, on: connection)
        }
    }

    /// Multi-row `INSERT … VALUES ($1, …), (…)`, in as few statements as the parameter limit allows.
    private func writeValues(_ rows: [Row], on connection: isolated PostgresConnection) throws -> Int {
        let rowsPerStatement = Self.maxParameters / columns.count
        var written = 0
        for start in stride(from: 0, to: rows.count, by: rowsPerStatement) {
            let chunk = rows[start..<min(start + rowsPerStatement, rows.count)]
            var parameters: [(any PostgresTextEncodable)?] = []
            parameters.reserveCapacity(chunk.count * columns.count)
            var placeholders: [String] = []
            placeholders.reserveCapacity(chunk.count)
            for row in chunk {
                let values = fields(row)
                let first = parameters.count
                for value in values { parameters.append(value) }
                let row = columns.enumerated().map { index, column in "$\(first + index + 1)::\(column.type)" }
                placeholders.append("(" + row.joined(separator: ", ") + ")")
            }
            let result = try connection.query(
                upsertSQL(source: "VALUES " + placeholders.joined(separator: ", ")), parameters
            )
            written += result.affectedRows ?? 0
        }
        return written
    }

    /// COPY into a staging table that lives until the transaction ends, then one merge.
    private func writeThroughStaging(_ rows: [Row], on connection: isolated PostgresConnection) throws -> Int {
        let staging = "staging_\(table)"
        try connection.execute(script: "CREATE TEMP TABLE \(staging) (LIKE \(table)) ON COMMIT DROP")
        let copied = try connection.copyIn("COPY \(staging) (\(columnList)) FROM STDIN (FORMAT binary)") { writer in
            try encode(rows, into: &writer)
        }
        guard copied == rows.count else {
            throw PostgresError(kind: .client, message: "COPY into \(staging) took \(copied) of \(rows.count) rows")
        }
        // In key order, the merge walks the primary key index (and the table) front to back
        // instead of at random: a fifth to a third faster for 100,000 rows.
        let merged = try connection.query(
            upsertSQL(source: "SELECT \(columnList) FROM \(staging) ORDER BY \(keyList)")
        )
        return merged.affectedRows ?? 0
    }

    /// The rows as binary COPY rows, one field per column (in `columns` order).
    func encode(_ rows: [Row], into writer: inout PostgresCopyWriter) throws {
        for row in rows {
            for value in fields(row) {
                try writer.append(value)
            }
            try writer.endRow()
        }
    }
}
