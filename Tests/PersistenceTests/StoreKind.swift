import Foundation
import Persistence
import TestSupport
import Testing

/// Every store implementation the shared store suite runs against. A new implementation joins
/// the suite by adding a case here.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    /// Against a real PostgreSQL server: see `PostgresTestServer`.
    case postgres

    var testDescription: String { rawValue }

    /// Opens the store of `fixture`, which may already hold data from an earlier opening.
    func open(_ fixture: StoreFixture) throws -> any SnapshotStore {
        switch self {
        case .sqlite:
            return try SQLiteSnapshotStore(directory: fixture.location.path)
        case .postgres:
            guard let databaseURL = fixture.databaseURL else {
                throw StoreFixture.MissingDatabase()
            }
            return PostgresSnapshotStore(url: databaseURL)
        }
    }
}
