import Cluster
import Foundation
import Hub
import Persistence
import PostgresClient
import TestSupport
import Testing

/// Cluster mode against a real PostgreSQL (see `PostgresTestServer`; each test has a schema of
/// its own): node leases, takeovers, fenced snapshot writes (`ClusterSnapshotStore`), claiming
/// trips at load, and sign-ups unique across nodes.
@Suite("PostgreSQL cluster store", MachineLoad.shared)
struct PostgresClusterStoreTests {
    /// A short lease, and a wait after which it has surely run out.
    static let shortLease = Duration.milliseconds(200)
    static let pastShortLease = Duration.milliseconds(450)
    static let longLease = Duration.seconds(60)

    /// Runs `body` with the URL of a fresh, migrated schema of its own.
    private static func withDatabase(_ body: (String) async throws -> Void) async throws {
        try await PostgresTestServer.shared.withSchema { url in
            let store = PostgresSnapshotStore(url: url)
            try await store.migrate()
            await store.close()
            try await body(url)
        }
    }

    private static func cluster(_ url: String, _ node: String, incarnation: UInt64 = 1) throws -> PostgresClusterStore {
        try PostgresClusterStore(url: url, nodeID: node, incarnation: incarnation)
    }

    /// A snapshot store writing for `node`.
    private static func snapshots(_ url: String, node: String, copyThreshold: Int = 1_000_000) -> ClusterSnapshotStore {
        ClusterSnapshotStore(url: url, nodeID: node, copyThreshold: copyThreshold)
    }

    /// The snapshot store of a single-node hub, which knows nothing of owners.
    private static func single(_ url: String, copyThreshold: Int = 1_000_000) -> PostgresSnapshotStore {
        PostgresSnapshotStore(url: url, copyThreshold: copyThreshold)
    }

    /// `trips.owner_node` and `trips.seq` of every row, by trip id, read directly.
    private static func owners(_ url: String) async throws -> [UUID: String?] {
        let check = PostgresConnection(url: url)
        let rows = try await check.query("SELECT id, owner_node FROM trips")
        await check.close()
        var owners: [UUID: String?] = [:]
        for row in rows {
            owners[try row.decode(UUID.self, at: 0)] = try row.decodeIfPresent(String.self, at: 1)
        }
        return owners
    }

    private static func trip(_ status: TripStatus = .requested, created offset: Int64, seq: Int64 = 1) -> Trip {
        var trip = Samples.trip(status, created: Timestamp(microseconds: Samples.now.microseconds + offset))
        trip.seq = seq
        return trip
    }

    // MARK: - Leases

    @Test("a lease is live, runs out after its length on the database's clock, and renews")
    func leaseLifecycle() async throws {
        try await Self.withDatabase { url in
            let a = try Self.cluster(url, "node-a")
            let b = try Self.cluster(url, "node-b")
            #expect(try await a.liveNodes() == [])
            #expect(try await a.renew(lease: Self.longLease) == false)  // never registered

            try await a.register(lease: Self.longLease)
            try await b.register(lease: Self.longLease)
            #expect(try await b.liveNodes() == ["node-a", "node-b"])
            #expect(try await b.expiredNodes() == [])

            // Registering again replaces the lease (here with a short one, which then runs out).
            try await a.register(lease: Self.shortLease)
            try await Task.sleep(for: Self.pastShortLease)
            #expect(try await b.expiredNodes() == ["node-a"])
            #expect(try await a.expiredNodes() == [])  // never itself
            #expect(try await b.liveNodes() == ["node-b"])

            // Run out, even if not taken over yet: renewing cannot bring it back (the node must
            // rejoin as a new incarnation), and it stays expired.
            #expect(try await a.renew(lease: Self.longLease) == false)
            #expect(try await b.expiredNodes() == ["node-a"])
            // Registered again (a new incarnation would do it), the lease is live and renews.
            try await a.register(lease: Self.longLease)
            #expect(try await a.renew(lease: Self.longLease))
            #expect(try await b.expiredNodes() == [])
            #expect(try await b.liveNodes() == ["node-a", "node-b"])
            // A live lease is not taken over.
            #expect(try await b.takeOver(node: "node-a") == nil)
            #expect(try await b.takeOver(node: "never-registered") == nil)
            await a.close()
            await b.close()
        }
    }

    @Test("renew returns false once another node took this one over, or a newer incarnation registered")
    func renewAfterTakeover() async throws {
        try await Self.withDatabase { url in
            let a = try Self.cluster(url, "node-a", incarnation: 1)
            let b = try Self.cluster(url, "node-b")
            try await a.register(lease: Self.shortLease)
            try await Task.sleep(for: Self.pastShortLease)
            let taken = try #require(try await b.takeOver(node: "node-a"))
            #expect(taken.trips.isEmpty && taken.tracks.isEmpty)
            // The taker learns which run it retired: that run's answers are stale from now on.
            #expect(taken.incarnation == 1)
            #expect(try await a.renew(lease: Self.longLease) == false)
            #expect(try await b.liveNodes() == [])

            // The node comes back as a new run: the old run loses its lease.
            let again = try Self.cluster(url, "node-a", incarnation: 2)
            try await again.register(lease: Self.longLease)
            #expect(try await again.renew(lease: Self.longLease))
            #expect(try await a.renew(lease: Self.longLease) == false)
            #expect(try await b.liveNodes() == ["node-a"])

            // Incarnations use all 64 bits.
            let big = try Self.cluster(url, "node-big", incarnation: UInt64.max)
            try await big.register(lease: Self.longLease)
            #expect(try await big.renew(lease: Self.longLease))
            for store in [a, b, again, big] { await store.close() }
        }
    }

    // MARK: - Takeover

    @Test("of many concurrent takeovers by two nodes exactly one wins and gets the unfinished trips with their tracks")
    func concurrentTakeover() async throws {
        try await Self.withDatabase { url in
            // The dead node's trips: three unfinished (two with tracks), two finished.
            let open = [
                Self.trip(.requested, created: 3), Self.trip(.started, created: 1), Self.trip(.inProgress, created: 2),
            ]
            let done = [Self.trip(.completed, created: 4), Self.trip(.canceled, created: 5)]
            let tracks = [
                open[1].id: Samples.track(open[1].id, seqs: 1...3),
                open[2].id: Samples.track(open[2].id, seqs: [5, 9]),
                done[0].id: Samples.track(done[0].id, seqs: 1...2),
            ]
            let deadWriter = Self.snapshots(url, node: "dead")
            try await deadWriter.write(
                Samples.changes(users: [Samples.user(1)], trips: open + done, trackPoints: tracks.values.flatMap { $0 })
            )
            // Trips of a live node and of no node stay where they are.
            let othersTrip = Self.trip(created: 6)
            try await Self.snapshots(url, node: "other").write(Samples.changes(trips: [othersTrip]))
            let unowned = Self.trip(created: 7)
            try await Self.single(url).write(Samples.changes(trips: [unowned]))

            let dead = try Self.cluster(url, "dead")
            try await dead.register(lease: Self.shortLease)
            try await Task.sleep(for: Self.pastShortLease)

            let contenders = [try Self.cluster(url, "node-1"), try Self.cluster(url, "node-2")]
            #expect(try await contenders[0].expiredNodes() == ["dead"])
            let results = try await withThrowingTaskGroup(
                of: (String, (trips: [Trip], tracks: [UUID: [TrackPoint]], incarnation: UInt64)?).self
            ) { group in
                for attempt in 0..<20 {
                    let store = contenders[attempt % 2]
                    group.addTask { (store.nodeID, try await store.takeOver(node: "dead")) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = results.filter { $0.1 != nil }
            try #require(winners.count == 1)
            let (winner, taken) = (winners[0].0, winners[0].1!)
            #expect(taken.trips == open.sorted { $0.created < $1.created })
            #expect(taken.tracks == [open[1].id: tracks[open[1].id]!, open[2].id: tracks[open[2].id]!])

            let owners = try await Self.owners(url)
            for trip in open { #expect(owners[trip.id] == .some(winner)) }
            for trip in done { #expect(owners[trip.id] == .some("dead")) }
            #expect(owners[othersTrip.id] == .some("other"))
            #expect(owners[unowned.id] == .some(nil))
            #expect(try await contenders[0].owner(of: open[0].id) == winner)
            #expect(try await contenders[0].expiredNodes() == [])
            #expect(try await contenders[1].takeOver(node: "dead") == nil)

            // The winner's own view of what it owns agrees.
            let store = contenders.first { $0.nodeID == winner }!
            let owned = try await store.ownedTrips()
            #expect(owned.trips == taken.trips && owned.tracks == taken.tracks)
            await #expect(throws: PostgresError.self) { try await store.takeOver(node: winner) }
            for store in contenders + [dead] { await store.close() }
            await deadWriter.close()
        }
    }

    // MARK: - Fencing

    @Test(
        "a node's snapshot never overwrites a trip another node took over",
        arguments: [("multi-row insert", 1_000_000), ("COPY and staging table", 1)]
    )
    func fencedSnapshot(path: String, copyThreshold: Int) async throws {
        try await Self.withDatabase { url in
            let aWriter = Self.snapshots(url, node: "node-a", copyThreshold: copyThreshold)
            let bWriter = Self.snapshots(url, node: "node-b", copyThreshold: copyThreshold)
            let trip = Self.trip(.requested, created: 1, seq: 1)
            let kept = Self.trip(.requested, created: 2, seq: 1)
            try await aWriter.write(Samples.changes(trips: [trip, kept], trackPoints: Samples.track(trip.id, seqs: 1...2)))
            #expect(try await Self.owners(url) == [trip.id: "node-a", kept.id: "node-a"])

            let a = try Self.cluster(url, "node-a")
            let b = try Self.cluster(url, "node-b")
            try await a.register(lease: Self.shortLease)
            try await Task.sleep(for: Self.pastShortLease)
            let taken = try #require(try await b.takeOver(node: "node-a"))
            #expect(Set(taken.trips.map(\.id)) == [trip.id, kept.id])

            // The new owner moves on (its seq far ahead) ...
            var bTrip = trip
            bTrip.status = .started
            bTrip.driverID = 7
            bTrip.seq = 1_000_000_000
            try await bWriter.write(Samples.changes(trips: [bTrip]))
            // ... and the old one, not knowing yet, snapshots its stale view: the row stays B's.
            var aTrip = trip
            aTrip.status = .canceled
            aTrip.seq = 3
            let newTrip = Self.trip(.requested, created: 3)
            let stalePoint = TrackPoint(tripID: trip.id, seq: 3, fix: Samples.fix(3))
            #expect(aWriter.fencedTripRows == 0)
            try await aWriter.write(Samples.changes(trips: [aTrip, kept, newTrip], trackPoints: [stalePoint]))
            #expect(aWriter.fencedTripRows == 2)  // aTrip, and `kept` (unchanged, but B's now)
            #expect(try await aWriter.trip(id: trip.id) == bTrip)
            #expect(try await aWriter.trip(id: kept.id) == kept)
            #expect(try await aWriter.trip(id: newTrip.id) == newTrip)
            let owners = try await Self.owners(url)
            #expect(owners == [trip.id: "node-b", kept.id: "node-b", newTrip.id: "node-a"])
            // The stale node's track point is stored beside the new owner's (harmless: seqs differ).
            #expect(try await aWriter.track(of: trip.id).map(\.seq) == [1, 2, 3])
            #expect(bWriter.fencedTripRows == 0)

            // A write with nothing fenced counts nothing more.
            var newer = newTrip
            newer.status = .canceled
            try await aWriter.write(Samples.changes(trips: [newer]))
            #expect(aWriter.fencedTripRows == 2)
            for store in [aWriter, bWriter] { await store.close() }
            for store in [a, b] { await store.close() }
        }
    }

    @Test("a single-node store neither fences nor touches owners, and loads every unfinished trip")
    func singleNodeUnchanged() async throws {
        try await Self.withDatabase { url in
            let trip = Self.trip(.requested, created: 1)
            try await Self.snapshots(url, node: "node-b").write(Samples.changes(trips: [trip]))
            // A single hub's store has no owner node and no count of fenced rows any more (both
            // are `ClusterSnapshotStore`'s): that it fences nothing shows in the rows below.
            let single = Self.single(url)
            var changed = trip
            changed.status = .started
            let other = Self.trip(.requested, created: 2)
            try await single.write(Samples.changes(trips: [changed, other]))
            #expect(try await single.trip(id: trip.id) == changed)
            let expected: [UUID: String?] = [trip.id: "node-b", other.id: nil]
            #expect(try await Self.owners(url) == expected)
            #expect(try await single.loadUnfinishedTrips() == [changed, other])
            #expect(try await Self.owners(url) == expected)
            await single.close()
        }
    }

    // MARK: - Loading

    @Test("loading in cluster mode returns every user but only own unfinished trips, claiming unowned ones")
    func clusterLoad() async throws {
        try await Self.withDatabase { url in
            let mine = Self.trip(.started, created: 1)
            let mineDone = Self.trip(.completed, created: 2)
            let theirs = Self.trip(.requested, created: 3)
            let unowned = Self.trip(.inProgress, created: 4)
            let unownedDone = Self.trip(.canceled, created: 5)
            let points = [mine, theirs, unowned, unownedDone].flatMap { Samples.track($0.id, seqs: 1...2) }
            try await Self.snapshots(url, node: "node-a").write(Samples.changes(trips: [mine, mineDone]))
            try await Self.snapshots(url, node: "node-b").write(Samples.changes(trips: [theirs]))
            try await Self.single(url).write(
                Samples.changes(users: [Samples.user(1), Samples.user(2)], trips: [unowned, unownedDone], trackPoints: points)
            )

            let store = Self.snapshots(url, node: "node-a")
            #expect(try await store.loadUsers() == [Samples.user(1), Samples.user(2)])
            #expect(try await store.loadUnfinishedTrips() == [mine, unowned])
            #expect(
                try await store.loadUnfinishedTracks() == [
                    mine.id: Samples.track(mine.id, seqs: 1...2), unowned.id: Samples.track(unowned.id, seqs: 1...2),
                ]
            )
            let owners = try await Self.owners(url)
            #expect(owners[unowned.id] == .some("node-a"))
            #expect(owners[unownedDone.id] == .some(nil))  // finished trips are not claimed
            #expect(owners[theirs.id] == .some("node-b"))
            // Node B sees its own only: the unowned trip is A's now.
            #expect(try await Self.snapshots(url, node: "node-b").loadUnfinishedTrips() == [theirs])
            await store.close()
        }
    }

    @Test("two nodes loading at once never both get the same unowned trip")
    func concurrentLoads() async throws {
        try await Self.withDatabase { url in
            for round in 0..<5 {
                let trips = (0..<200).map { Self.trip(.requested, created: Int64(round * 1_000 + $0)) }
                try await Self.single(url).write(Samples.changes(trips: trips))
                let stores = (0..<4).map { Self.snapshots(url, node: "node-\($0 % 2)") }
                let loaded = try await withThrowingTaskGroup(of: (String, [UUID]).self) { group in
                    for store in stores {
                        group.addTask { (store.nodeID, try await store.loadUnfinishedTrips().map(\.id)) }
                    }
                    return try await group.reduce(into: [String: Set<UUID>]()) { $0[$1.0, default: []].formUnion($1.1) }
                }
                let zero = loaded["node-0"] ?? [], one = loaded["node-1"] ?? []
                #expect(zero.isDisjoint(with: one))
                #expect(zero.union(one).isSuperset(of: trips.map(\.id)))
                let owners = try await Self.owners(url)
                for id in zero { #expect(owners[id] == .some("node-0")) }
                for id in one { #expect(owners[id] == .some("node-1")) }
                for store in stores { await store.close() }
            }
        }
    }

    // MARK: - Users and owners

    @Test("a username signs up once across nodes, and the snapshot of that user still writes")
    func uniqueSignUp() async throws {
        try await Self.withDatabase { url in
            let stores = [try Self.cluster(url, "node-a"), try Self.cluster(url, "node-b")]
            let results = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for attempt in 0..<20 {
                    let store = stores[attempt % 2]
                    let user = User(
                        id: 100 + attempt, username: "zoë", firstName: "Zoë \(attempt)", lastName: "L", group: .rider,
                        photo: nil, passwordHash: "hash\(attempt)"
                    )
                    group.addTask { (user.id, try await store.insertUser(user)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = results.filter(\.1).map(\.0)
            try #require(winners.count == 1)
            let stored = try #require(try await stores[1].user(username: "zoë"))
            #expect(stored.id == winners[0])
            #expect(stored.passwordHash == "hash\(winners[0] - 100)")
            #expect(try await stores[0].user(username: "nobody") == nil)

            // Repeating the winning insert (a retry) still says yes; a loser's stays no.
            #expect(try await stores[0].insertUser(stored))
            let loser = User(
                id: 999, username: "zoë", firstName: "Z", lastName: "L", group: .driver, photo: nil, passwordHash: "h"
            )
            #expect(try await stores[0].insertUser(loser) == false)
            // An id taken by another username is the caller's mistake: it throws.
            let clash = User(
                id: stored.id, username: "other", firstName: "O", lastName: "L", group: .rider, photo: nil,
                passwordHash: "h"
            )
            await #expect(throws: PostgresError.self) { try await stores[1].insertUser(clash) }

            // The node's snapshot of the same user (same id) updates the row.
            var renamed = stored
            renamed.firstName = "Renamed"
            let writer = Self.snapshots(url, node: "node-a")
            try await writer.write(Samples.changes(users: [renamed]))
            #expect(try await writer.loadUsers() == [renamed])
            #expect(try await stores[0].user(username: "zoë") == renamed)
            await writer.close()
            for store in stores { await store.close() }
        }
    }

    @Test("owner(of:) names a trip's owner: none for unknown trips and single-node rows")
    func owners() async throws {
        try await Self.withDatabase { url in
            let owned = Self.trip(created: 1)
            let unowned = Self.trip(created: 2)
            try await Self.snapshots(url, node: "node-a").write(Samples.changes(trips: [owned]))
            try await Self.single(url).write(Samples.changes(trips: [unowned]))
            let store = try Self.cluster(url, "node-b")
            #expect(try await store.owner(of: owned.id) == "node-a")
            #expect(try await store.owner(of: unowned.id) == nil)
            #expect(try await store.owner(of: UUID()) == nil)
            await store.close()
        }
    }

    @Test("a node id must be non-empty")
    func invalidNodeID() async throws {
        #expect(throws: PostgresClusterStore.InvalidNodeID.self) {
            try PostgresClusterStore(url: "postgres://127.0.0.1:1/none", nodeID: "", incarnation: 1)
        }
    }
}
