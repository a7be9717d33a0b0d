import Hub
import NATSClient
import Testing

@testable import Cluster
import TestSupport

@Suite("Remote connections: a closed connection never comes back", MachineLoad.shared)
struct RemoteConnectionsTests {
    /// A registry whose link points at no server: these tests never publish.
    static func registry() throws -> RemoteConnections {
        let nats = try NATSConnection.connect(urls: ["nats://127.0.0.1:1"], name: "remote-connections-test")
        return RemoteConnections(link: ClusterLink(nats: nats))
    }

    static let rider = Principal(userID: 7, group: .rider)

    @Test("a close handled before its open leaves no stale connection behind")
    func closeBeforeOpen() throws {
        let remotes = try Self.registry()
        let origin = Origin(node: "node-1", incarnation: 3, connection: 42)
        #expect(remotes.remove(origin) == nil)
        #expect(remotes.mailbox(for: origin, principal: Self.rider) == nil)
        #expect(remotes.count == 0)
        // Another connection of the same node is unaffected.
        let other = Origin(node: "node-1", incarnation: 3, connection: 43)
        #expect(remotes.mailbox(for: other, principal: Self.rider) != nil)
        #expect(remotes.count == 1)
    }

    @Test("open, close, then a late notice for it: still gone")
    func lateNoticeAfterClose() throws {
        let remotes = try Self.registry()
        let origin = Origin(node: "node-2", incarnation: 1, connection: 5)
        let mailbox = try #require(remotes.mailbox(for: origin, principal: Self.rider))
        #expect(remotes.mailbox(for: origin, principal: Self.rider) === mailbox)
        #expect(remotes.remove(origin) === mailbox)
        #expect(remotes.mailbox(for: origin, principal: Self.rider) == nil)
        #expect(remotes.count == 0)
    }

    @Test("the memory of closed connections is bounded and forgets the oldest first")
    func boundedMemory() throws {
        let remotes = try Self.registry()
        let total = RemoteConnections.closedMemory + 10
        for number in 0..<total {
            _ = remotes.remove(Origin(node: "node-3", incarnation: 1, connection: UInt64(number)))
        }
        #expect(remotes.mailbox(for: Origin(node: "node-3", incarnation: 1, connection: UInt64(total - 1)), principal: Self.rider) == nil)
        #expect(remotes.mailbox(for: Origin(node: "node-3", incarnation: 1, connection: 0), principal: Self.rider) != nil)
    }
}
