import Foundation
import Persistence
import TestSupport

/// A store of one kind in a location of its own, which lasts for one test: a fresh folder, and
/// for PostgreSQL also a fresh schema (dropped afterwards).
struct StoreFixture: Sendable {
    struct MissingDatabase: Error {}

    let kind: StoreKind
    let location: URL
    /// The URL of the test's own PostgreSQL schema (see `PostgresTestServer`); nil for the other kinds.
    let databaseURL: String?

    /// Runs `body` with a fresh, empty location and removes it afterwards.
    static func with<T>(_ kind: StoreKind, _ body: (StoreFixture) async throws -> T) async throws -> T {
        let location = FileManager.default.temporaryDirectory
            .appendingPathComponent("taxihub-tests-\(UUID().uuidString.lowercased())")
        defer { try? FileManager.default.removeItem(at: location) }
        switch kind {
        case .sqlite:
            return try await body(StoreFixture(kind: kind, location: location, databaseURL: nil))
        case .postgres:
            return try await PostgresTestServer.shared.withSchema { url in
                try await body(StoreFixture(kind: kind, location: location, databaseURL: url))
            }
        }
    }

    /// Opens the store without migrating it.
    func openUnmigrated() throws -> any SnapshotStore {
        try kind.open(self)
    }

    /// Opens the store and brings its schema up to date.
    func open() async throws -> any SnapshotStore {
        let store = try openUnmigrated()
        try await store.migrate()
        return store
    }
}
