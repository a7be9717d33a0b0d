import Foundation
import Synchronization
import Testing

@testable import Hub
import TestSupport

@Suite("UserDirectory: unique usernames and increasing ids", MachineLoad.shared)
struct UserDirectoryTests {
    static func create(_ directory: UserDirectory, _ username: String, firstName: String = "First") -> User? {
        directory.create(
            username: username, firstName: firstName, lastName: "Last", group: .rider, photo: nil, passwordHash: "hash"
        )
    }

    static func stored(_ id: Int, _ username: String) -> User {
        User(id: id, username: username, firstName: "F", lastName: "L", group: .driver, photo: "photos/\(id).png", passwordHash: "h")
    }

    @Test("of 1,000 concurrent sign-ups with the same username, exactly one wins (for 100 usernames, on every core)")
    func sameUsernameOneWinner() throws {
        let usernames = 100
        let attemptsPerUsername = 1_000
        let changes = ChangeTracker()
        let directory = UserDirectory(changes: changes)
        let winners = Mutex<[String: [User]]>([:])
        // OS threads on every core, each username's 1,000 attempts back to back, so that
        // the first attempts on a username really run in parallel.
        DispatchQueue.concurrentPerform(iterations: usernames * attemptsPerUsername) { n in
            let username = "user\(n / attemptsPerUsername)"
            if let user = Self.create(directory, username, firstName: "Attempt \(n)") {
                winners.withLock { $0[username, default: []].append(user) }
            }
        }

        let byUsername = winners.withLock { $0 }
        #expect(byUsername.count == usernames)
        for (username, users) in byUsername {
            let winner = try #require(users.count == 1 ? users.first : nil, "\(users.count) sign-ups won \(username)")
            #expect(directory.user(username: username) == winner)
            #expect(directory.user(id: winner.id) == winner)
        }
        let all = byUsername.values.flatMap { $0 }
        #expect(directory.count == usernames)
        #expect(Set(all.map(\.id)).count == usernames)
        #expect(changes.drain().users == Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) }))
    }

    @Test("1,000 concurrent sign-ups with distinct usernames get 1,000 distinct ids, each findable")
    func distinctUsernamesDistinctIDs() async {
        let directory = UserDirectory(changes: ChangeTracker())
        let gate = StartingGate()
        let created = await withTaskGroup(of: User?.self) { group in
            for n in 0..<1_000 {
                group.addTask {
                    await gate.wait()
                    return Self.create(directory, "user\(n)")
                }
            }
            await gate.open(whenWaiting: 1_000)
            var created: [User] = []
            for await user in group { if let user { created.append(user) } }
            return created
        }
        #expect(created.count == 1_000)
        #expect(Set(created.map(\.id)).count == 1_000)
        #expect(directory.count == 1_000)
        for user in created {
            #expect(directory.user(username: user.username) == user)
        }
    }

    @Test("each new user gets a larger id than the one before, and a taken username gets none")
    func idsIncrease() throws {
        let directory = UserDirectory(changes: ChangeTracker())
        var ids: [Int] = []
        for n in 0..<20 {
            ids.append(try #require(Self.create(directory, "user\(n)")).id)
            #expect(Self.create(directory, "user\(n)") == nil)
        }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0 > 0 })
        #expect(directory.count == 20)
    }

    @Test("restore keeps the next id above every restored id and marks nothing changed")
    func restoreKeepsNextIDAbove() throws {
        let changes = ChangeTracker()
        let directory = UserDirectory(changes: changes)
        let restored = [Self.stored(5, "five"), Self.stored(42, "forty-two"), Self.stored(7, "seven")]
        directory.restore(restored)
        #expect(changes.pendingCount == 0)
        #expect(directory.count == 3)
        for user in restored {
            #expect(directory.user(id: user.id) == user)
            #expect(directory.user(username: user.username) == user)
        }

        #expect(Self.create(directory, "seven") == nil, "a restored username was given out again")
        let next = try #require(Self.create(directory, "new"))
        #expect(next.id > 42)

        // A later restore with lower ids does not lower the next id.
        directory.restore([Self.stored(3, "three")])
        let after = try #require(Self.create(directory, "newer"))
        #expect(after.id > next.id)
        #expect(changes.drain().users.keys.sorted() == [next.id, after.id])
    }
}
