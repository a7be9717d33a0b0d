import Foundation
import Persistence

/// A store of one kind in a location of its own, which lasts for one test.
struct StoreFixture: Sendable {
    let kind: StoreKind
    let location: URL

    /// Runs `body` with a fresh, empty location and removes it afterwards.
    static func with<T>(_ kind: StoreKind, _ body: (StoreFixture) async throws -> T) async throws -> T {
        let location = FileManager.default.temporaryDirectory
            .appendingPathComponent("taxihub-tests-\(UUID().uuidString.lowercased())")
        defer { try? FileManager.default.removeItem(at: location) }
        return try await body(StoreFixture(kind: kind, location: location))
    }

    /// Opens the store without migrating it.
    func openUnmigrated() throws -> any SnapshotStore {
        try kind.open(at: location)
    }

    /// Opens the store and brings its schema up to date.
    func open() async throws -> any SnapshotStore {
        let store = try openUnmigrated()
        try await store.migrate()
        return store
    }
}
