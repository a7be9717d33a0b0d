import Foundation
import Persistence
import Testing

/// Every store implementation the shared store suite runs against. A new implementation joins
/// the suite by adding a case here.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite

    var testDescription: String { rawValue }

    /// Opens the store at `location`, which may already hold data from an earlier opening.
    func open(at location: URL) throws -> any SnapshotStore {
        switch self {
        case .sqlite: try SQLiteSnapshotStore(directory: location.path)
        }
    }
}
