import Hub

/// Accounts in a cluster: a username is unique across the nodes (PostgreSQL decides), and every
/// node learns of a sign-up at once over NATS.
extension ClusterNode {
    /// Creates a user for a sign-up on this node; nil when the username is taken on any node.
    public func signUp(
        username: String, firstName: String, lastName: String, group: UserGroup, photo: String?, passwordHash: String
    ) async throws -> User? {
        guard hub.users.user(username: username) == nil else { return nil }
        // Ids are picked here and checked by the users table's primary key: a clash with a
        // sign-up on another node at the same moment moves on to a later id.
        var id = hub.users.nextID
        for attempt in 0..<8 {
            let user = User(
                id: id, username: username, firstName: firstName, lastName: lastName, group: group, photo: photo, passwordHash: passwordHash
            )
            do {
                guard try await leases.insertUser(user) else { return nil }
                hub.users.adopt(user)
                link.publish(Subject.users, user, kind: .notice)
                return user
            } catch where attempt < 7 {
                id = max(id, hub.users.nextID) + 1 + Int.random(in: 0..<16)
            }
        }
        return nil
    }

    /// A user this node has not heard of yet (signed up on another node while NATS was down).
    public func findUser(username: String) async -> User? {
        guard let user = try? await leases.user(username: username) else { return nil }
        hub.users.adopt(user)
        return user
    }
}
