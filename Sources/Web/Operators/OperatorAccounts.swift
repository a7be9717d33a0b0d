import Foundation
import Hub
import Logging
import Persistence

/// What `taxi-hub user create --operator` needs of the Web module: an admin token for a running
/// hub, or, with no hub running, the account written straight into the store.
public enum OperatorAccounts {
    /// A short-lived admin token signed with the configured hub's secret, for `POST /api/operators/`.
    public static func adminToken(configuration: HubConfiguration, logger: Logger) async throws -> String {
        try await TokenService(configuration: configuration, logger: logger).adminToken()
    }

    /// The path a running hub makes operators at.
    public static let path = OperatorController.path

    /// Writes a new operator into the store, with the next free id. Only for when no hub runs on
    /// this store: a running hub would hand the same id to its next sign-up.
    public static func createInStore(_ account: OperatorAccount, configuration: HubConfiguration, logger: Logger)
        async throws -> User
    {
        let store = try makeStore(configuration, logger: logger)
        try await store.migrate()
        // A hub that crashed may have left accounts in its journal only: the store gets them
        // first, so the new id is past theirs too.
        if !configuration.isClusterNode {
            _ = try await JournalRecovery.recover(journal: TripJournal(directory: configuration.dataDirectory), into: store)
        }
        let users = try await store.loadUsers()
        let errors = account.problems { name in users.contains { $0.username == name } }
        guard errors.isEmpty else { throw OperatorAccountError(fields: errors) }
        let hash = try await PasswordHasher(cost: configuration.bcryptCost).hash(account.password)
        let user = User(
            id: (users.map(\.id).max() ?? 0) + 1, username: account.username, firstName: account.firstName,
            lastName: account.lastName, group: .operator, photo: nil, passwordHash: hash
        )
        try await store.write(ChangeSet(users: [user.id: user]))
        return user
    }
}
