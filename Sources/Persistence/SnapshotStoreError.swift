/// Stored data that cannot be turned back into hub values. It means a damaged or foreign
/// database, so the store reports it instead of trapping or silently skipping the row.
public enum SnapshotStoreError: Error, Equatable, CustomStringConvertible {
    /// `column` of the row `rowID` in `table` holds `value`, which no hub value matches.
    case unreadableValue(table: String, column: String, rowID: String, value: String)

    public var description: String {
        switch self {
        case let .unreadableValue(table, column, rowID, value):
            "\(table).\(column) of row \(rowID) holds '\(value)', which is not a valid value"
        }
    }
}
