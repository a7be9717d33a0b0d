import GRDB
import GRDBSQLite

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
    ///
    /// Values are bound with SQLite's own calls on GRDB's prepared statement: GRDB's arguments
    /// (an array of values per statement, checked against the statement's parameters, bound one by
    /// one through existentials) took a third of the snapshot writer's time at 9,000 rows a second
    /// (docs/benchmarks-history.md).
    func execute(_ rows: [[DatabaseValue]], in db: Database) throws {
        for start in stride(from: 0, to: rows.count, by: rowsPerStatement) {
            let chunk = rows[start..<min(start + rowsPerStatement, rows.count)]
            let sql = sql(rowCount: chunk.count)
            let statement = try db.cachedStatement(sql: sql).sqliteStatement
            sqlite3_reset(statement)
            var index: Int32 = 1
            for row in chunk {
                for value in row {
                    Self.bind(value, at: index, in: statement)
                    index += 1
                }
            }
            let code = sqlite3_step(statement)
            sqlite3_reset(statement)
            guard code == SQLITE_DONE else {
                let message = db.sqliteConnection.map { String(cString: sqlite3_errmsg($0)) }
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
            }
        }
    }

    /// SQLite copies text it is given with this destructor (`SQLITE_TRANSIENT`).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private static func bind(_ value: DatabaseValue, at index: Int32, in statement: SQLiteStatement) {
        switch value.storage {
        case .null: sqlite3_bind_null(statement, index)
        case .int64(let int): sqlite3_bind_int64(statement, index, int)
        case .double(let double): sqlite3_bind_double(statement, index, double)
        case .string(let string): sqlite3_bind_text(statement, index, string, -1, transient)
        case .blob(let data):
            data.withUnsafeBytes { bytes in
                _ = sqlite3_bind_blob(statement, index, bytes.baseAddress, Int32(bytes.count), transient)
            }
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
