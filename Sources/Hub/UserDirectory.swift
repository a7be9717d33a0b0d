import Synchronization

/// Every user account, by id and by username. Look-ups are synchronous so actors can
/// resolve riders and drivers while building a trip's nested form without suspending.
public final class UserDirectory: Sendable {
    private struct State {
        var byID: [Int: User] = [:]
        var idByUsername: [String: Int] = [:]
        var nextID = 1
    }

    private let state = Mutex(State())
    private let changes: ChangeTracker
    private let commitLog: any CommitLog

    /// - Parameter commitLog: where new accounts become durable before `signUp` returns them.
    public init(changes: ChangeTracker, commitLog: any CommitLog = ImmediateCommitLog()) {
        self.changes = changes
        self.commitLog = commitLog
    }

    /// Puts users loaded from the store back, without marking them changed.
    public func restore(_ users: [User]) {
        state.withLock { state in
            for user in users {
                state.byID[user.id] = user
                state.idByUsername[user.username] = user.id
                state.nextID = max(state.nextID, user.id + 1)
            }
        }
    }

    /// Creates a user with the next id and returns it once the account is durable; nil when the
    /// username is taken. Throws `unavailable` when the commit log failed.
    public func signUp(
        username: String, firstName: String, lastName: String, group: UserGroup, photo: String?, passwordHash: String
    ) async throws(HubError) -> User? {
        guard let user = create(username: username, firstName: firstName, lastName: lastName, group: group, photo: photo, passwordHash: passwordHash)
        else { return nil }
        try await makeDurable([user])
        return user
    }

    /// Makes accounts made with `create` durable; returns once they all are. Throws `unavailable`
    /// when the commit log failed.
    public func makeDurable(_ users: [User]) async throws(HubError) {
        var last: CommitPosition = 0
        for user in users { last = commitLog.append(.user(user)) }
        try await commitLog.waitUntilDurable(last)
    }

    /// Creates a user with the next id, or returns nil when the username is taken. The account
    /// reaches the store with the next snapshot; `signUp` waits until it is durable.
    public func create(
        username: String, firstName: String, lastName: String, group: UserGroup, photo: String?, passwordHash: String
    ) -> User? {
        let user: User? = state.withLock { state in
            guard state.idByUsername[username] == nil else { return nil }
            let user = User(
                id: state.nextID, username: username, firstName: firstName, lastName: lastName,
                group: group, photo: photo, passwordHash: passwordHash
            )
            state.nextID += 1
            state.byID[user.id] = user
            state.idByUsername[username] = user.id
            return user
        }
        if let user { changes.record(user) }
        return user
    }

    /// Adds one user created elsewhere (another node of a cluster), without marking it changed;
    /// false when its id or username is taken by another user.
    @discardableResult
    public func adopt(_ user: User) -> Bool {
        state.withLock { state in
            if let existing = state.byID[user.id] { return existing.username == user.username }
            guard state.idByUsername[user.username] == nil else { return false }
            state.byID[user.id] = user
            state.idByUsername[user.username] = user.id
            state.nextID = max(state.nextID, user.id + 1)
            return true
        }
    }

    /// The id `create` would give the next user.
    public var nextID: Int {
        state.withLock { $0.nextID }
    }

    public func user(id: Int) -> User? {
        state.withLock { $0.byID[id] }
    }

    public func user(username: String) -> User? {
        state.withLock { state in state.idByUsername[username].flatMap { state.byID[$0] } }
    }

    /// A trip with its rider and driver resolved, as clients receive it.
    public func view(of trip: Trip) -> TripView {
        state.withLock { state in
            TripView(trip: trip, rider: trip.riderID.flatMap { state.byID[$0] }, driver: trip.driverID.flatMap { state.byID[$0] })
        }
    }

    public var count: Int {
        state.withLock { $0.byID.count }
    }
}
