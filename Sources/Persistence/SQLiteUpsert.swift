import GRDB

/// A batched `INSERT … ON CONFLICT(key) DO UPDATE` (or `DO NOTHING`) for one SQLite table: many
/// rows per statement, cut into statements that stay well under SQLite's host-parameter limit.
struct SQLiteUpsert: Sendable {
    /// The smallest host-parameter limit any SQLite build has had (newer ones allow 32,766).
    static let maxParameters = 999

    let table: String
    /// Every column, the primary key's columns first.
    let columns: [String]
    /// How many leading `columns` make up the primary key.
    var keyCount = 1
    var onConflict = ConflictAction.update

    var rowsPerStatement: Int { Self.maxParameters / columns.count }

    /// Writes `rows`, each holding one value per column in `columns` order.
    func execute(_ rows: [[DatabaseValue]], in db: Database) throws {
        for start in stride(from: 0, to: rows.count, by: rowsPerStatement) {
            let chunk = rows[start..<min(start + rowsPerStatement, rows.count)]
            // As optional existentials: GRDB's initializer for a sequence of concrete values maps
            // them through a key path, unspecialized, at a metadata look-up per value (3 % of the
            // hub's CPU at 9,000 rows/s, BENCHMARKS.md "Where the CPU went").
            var values: [(any DatabaseValueConvertible)?] = []
            values.reserveCapacity(chunk.count * columns.count)
            for row in chunk {
                for value in row { values.append(value) }
            }
            let statement = try db.cachedStatement(sql: sql(rowCount: chunk.count))
            try statement.execute(arguments: StatementArguments(values))
        }
    }

    func sql(rowCount: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns.count).joined(separator: ",") + ")"
        let key = columns.prefix(keyCount).joined(separator: ", ")
        let action: String
        switch onConflict {
        case .update:
            let updates = columns.dropFirst(keyCount).map { "\($0) = excluded.\($0)" }
            action = "DO UPDATE SET " + updates.joined(separator: ", ")
        case .keep:
            action = "DO NOTHING"
        }
        return "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES "
            + Array(repeating: row, count: rowCount).joined(separator: ",")
            + " ON CONFLICT(\(key)) \(action)"
    }
}
