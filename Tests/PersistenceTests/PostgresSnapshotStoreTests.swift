import Foundation
import Hub
import Persistence
import PostgresClient
import TestSupport
import Testing

/// What only the PostgreSQL store promises, on top of the shared store suite: its schema, both
/// write paths, large snapshots, atomicity, and surviving a server that goes away.
@Suite("PostgreSQL snapshot store", MachineLoad.shared)
struct PostgresSnapshotStoreTests {
    /// Runs `body` with the URL of a fresh schema of its own.
    private static func withSchema(_ body: (String) async throws -> Void) async throws {
        try await PostgresTestServer.shared.withSchema(body)
    }

    private static func migratedStore(_ url: String, copyThreshold: Int = PostgresSnapshotStore.defaultCopyThreshold)
        async throws -> PostgresSnapshotStore
    {
        let store = PostgresSnapshotStore(url: url, copyThreshold: copyThreshold)
        try await store.migrate()
        return store
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    @Test("100,000 changed trips land in one write, and again as updates")
    func hundredThousandTrips() async throws {
        try await Self.withSchema { url in
            let store = try await Self.migratedStore(url)
            let count = 100_000
            var trips = (0..<count).map { index in
                Samples.trip(
                    TripStatus.allCases[index % TripStatus.allCases.count], rider: index % 5_000 + 1,
                    driver: index.isMultiple(of: 3) ? nil : index % 997 + 1,
                    created: Timestamp(microseconds: Samples.now.microseconds + Int64(index))
                )
            }
            let clock = ContinuousClock()
            let inserted = try await clock.measure { try await store.write(Samples.changes(trips: trips)) }

            for index in trips.indices {
                trips[index].updated = Timestamp(microseconds: trips[index].updated.microseconds + 1_000)
                if trips[index].status == .requested { trips[index].status = .started }
            }
            let updated = try await clock.measure { try await store.write(Samples.changes(trips: trips)) }
            print(
                "PostgreSQL flush of \(count) changed trips: insert \(Self.seconds(inserted)) s, "
                    + "update \(Self.seconds(updated)) s"
            )

            let check = PostgresConnection(url: url)
            let stored = try await check.query("SELECT count(*), count(DISTINCT id), min(created), max(created) FROM trips")[0]
            #expect(stored[0] == String(count))
            #expect(stored[1] == String(count))
            #expect(stored[2] == String(Samples.now.microseconds))
            #expect(stored[3] == String(Samples.now.microseconds + Int64(count - 1)))
            let requested = try await check.query("SELECT count(*) FROM trips WHERE status = $1", ["REQUESTED"])
            #expect(requested[0][0] == "0")
            await check.close()

            for index in [0, 1, 2, 3, 4_999, 50_000, 77_777, count - 1] {
                #expect(try await store.trip(id: trips[index].id) == trips[index])
            }
            let unfinished = try await store.loadUnfinishedTrips()
            #expect(unfinished.count == trips.filter { !$0.status.isFinished }.count)
            #expect(unfinished.first == trips.first { !$0.status.isFinished })
        }
    }

    @Test(
        "tricky text round-trips exactly through both write paths",
        arguments: [("multi-row insert", 1_000_000), ("COPY and staging table", 1)]
    )
    func trickyText(path: String, copyThreshold: Int) async throws {
        try await Self.withSchema { url in
            let store = try await Self.migratedStore(url, copyThreshold: copyThreshold)
            let texts = Samples.trickyTexts
            let users = texts.enumerated().map { index, text in
                User(
                    id: index + 1, username: "u\(index) \(text)", firstName: text, lastName: "\(text)\t\(text)",
                    group: index.isMultiple(of: 2) ? .rider : .driver, photo: index.isMultiple(of: 3) ? nil : text,
                    passwordHash: "$2b$12$\(text)"
                )
            }
            let trips = texts.enumerated().map { index, text in
                Trip(
                    id: UUID(), created: Timestamp(microseconds: Int64(index) - 3),
                    updated: Timestamp(microseconds: Int64.max - Int64(index)), pickUpAddress: text,
                    dropOffAddress: "\\\(text)\n", status: TripStatus.allCases[index % TripStatus.allCases.count],
                    riderID: index.isMultiple(of: 2) ? nil : Int.min + index, driverID: index.isMultiple(of: 5) ? nil : index
                )
            }
            try await store.write(Samples.changes(users: users, trips: trips))

            #expect(try await store.loadUsers() == users, "\(path)")
            for trip in trips {
                #expect(try await store.trip(id: trip.id) == trip, "\(path)")
            }
        }
    }

    @Test(
        "GPS values round-trip exactly through both write paths, repeated track points too",
        arguments: [("multi-row insert", 1_000_000), ("COPY and staging table", 1)]
    )
    func gpsWritePaths(path: String, copyThreshold: Int) async throws {
        try await Self.withSchema { url in
            let store = try await Self.migratedStore(url, copyThreshold: copyThreshold)
            let fixes = SnapshotStoreTests.edgeFixes
            let trips = fixes.enumerated().map { index, fix in
                Samples.trip(TripStatus.allCases[index % TripStatus.allCases.count])
                    .with(pickUp: fix.point, dropOff: index.isMultiple(of: 2) ? nil : fix.point, seq: Int64(index))
            }
            let positions = fixes.enumerated().map { DriverPosition(driverID: $0 + 1, fix: $1) }
            let points = fixes.enumerated().map { TrackPoint(tripID: trips[0].id, seq: Int64($0), fix: $1) }
            try await store.write(Samples.changes(trips: trips, positions: positions, trackPoints: points))
            // Again, with every point twice in the same batch.
            try await store.write(Samples.changes(trips: trips, positions: positions, trackPoints: points + points))

            for trip in trips {
                #expect(try await store.trip(id: trip.id) == trip, "\(path)")
            }
            let track = try await store.track(of: trips[0].id)
            #expect(track == points, "\(path)")
            #expect(track.map { SnapshotStoreTests.bits($0.fix) } == points.map { SnapshotStoreTests.bits($0.fix) })
            let check = PostgresConnection(url: url)
            let stored = try await check.query(
                "SELECT heading, speed, accuracy FROM driver_positions ORDER BY driver_id"
            ).map { row in try (0..<3).map { try row.decodeIfPresent(Double.self, at: $0)?.bitPattern } }
            #expect(stored == positions.map { [$0.fix.heading, $0.fix.speed, $0.fix.accuracy].map { $0?.bitPattern } })
            await check.close()
        }
    }

    @Test("a write is one transaction: when a row fails, nothing of it lands", arguments: [1_000_000, 1])
    func atomicWrite(copyThreshold: Int) async throws {
        try await Self.withSchema { url in
            let store = try await Self.migratedStore(url, copyThreshold: copyThreshold)
            let existing = Samples.user(1)
            try await store.write(Samples.changes(users: [existing]))

            var clash = Samples.user(2)
            clash.username = existing.username
            let trip = Samples.trip()
            let error = await #expect(throws: PostgresError.self) {
                try await store.write(Samples.changes(users: [clash, Samples.user(3)], trips: [trip]))
            }
            #expect(error?.sqlState == .uniqueViolation)
            #expect(try await store.loadUsers() == [existing])
            #expect(try await store.trip(id: trip.id) == nil)

            // The store still works after the failed transaction.
            try await store.write(Samples.changes(users: [Samples.user(3)], trips: [trip]))
            #expect(try await store.trip(id: trip.id) == trip)
        }
    }

    @Test("the next write succeeds after the server ended the store's sessions")
    func reconnectAfterTermination() async throws {
        try await Self.withSchema { url in
            let store = try await Self.migratedStore(url)
            let user = Samples.user(1)
            try await store.write(Samples.changes(users: [user]))
            #expect(try await store.loadUsers() == [user])

            let killer = PostgresConnection(url: url)
            let terminated = try await killer.query(
                """
                SELECT count(*) FROM (
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE application_name = current_setting('application_name') AND pid <> pg_backend_pid()
                ) AS ended
                """
            )
            #expect(terminated[0][0] == "2", "the store's writer and reader")

            let trip = Samples.trip()
            try await store.write(Samples.changes(trips: [trip]))
            #expect(try await store.trip(id: trip.id) == trip)
            #expect(try await store.loadUsers() == [user])
            await killer.close()
        }
    }

    @Test("a server that is down fails writes until it is up, then the same store writes everything")
    func outage() async throws {
        let port = try FreePort.find()
        let directory = "/tmp/taxihub-pg-outage-\(UUID().uuidString.prefix(8).lowercased())"
        let url = "postgres://postgres@127.0.0.1:\(port)/taxihub"
        let store = PostgresSnapshotStore(url: url)

        let down = await #expect(throws: PostgresError.self) { try await store.migrate() }
        #expect(down?.kind == .connection)
        await #expect(throws: PostgresError.self) { try await store.write(Samples.changes(users: [Samples.user(1)])) }
        await #expect(throws: PostgresError.self) { try await store.ping() }

        _ = try await PostgresTestServer.run(PostgresTestServer.script, ["start", directory, String(port)])
        do {
            try await store.migrate()
            try await store.ping()
            let trip = Samples.trip()
            try await store.write(Samples.changes(users: [Samples.user(1)], trips: [trip]))
            #expect(try await store.loadUsers() == [Samples.user(1)])
            #expect(try await store.trip(id: trip.id) == trip)
        } catch {
            Issue.record(error)
        }
        await store.close()
        _ = try await PostgresTestServer.run(PostgresTestServer.script, ["stop", directory])
    }

    @Test("migrations create every table, record their versions, and run safely side by side")
    func migrations() async throws {
        try await Self.withSchema { url in
            let stores = (0..<4).map { _ in PostgresSnapshotStore(url: url) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores {
                    group.addTask { try await store.migrate() }
                }
                try await group.waitForAll()
            }
            #expect(try await stores[0].schemaVersions() == PostgresMigrations.all.map(\.version))
            #expect(PostgresMigrations.latestVersion == 5)

            let check = PostgresConnection(url: url)
            let columns = try await check.query(
                """
                SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
                WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position
                """
            )
            let described = columns.map { "\($0[0]!).\($0[1]!) \($0[2]!)\($0[3] == "YES" ? " NULL" : "")" }
            #expect(
                described == [
                    "cluster_nodes.node_id text", "cluster_nodes.incarnation bigint",
                    "cluster_nodes.lease_until timestamp with time zone",
                    "cluster_nodes.started timestamp with time zone",
                    "driver_positions.driver_id bigint", "driver_positions.lat double precision",
                    "driver_positions.lng double precision", "driver_positions.heading double precision NULL",
                    "driver_positions.speed double precision NULL", "driver_positions.accuracy double precision NULL",
                    "driver_positions.recorded bigint",
                    "schema_migrations.version integer", "schema_migrations.name text",
                    "schema_migrations.applied_at timestamp with time zone",
                    "trip_track_points.trip_id uuid", "trip_track_points.seq bigint",
                    "trip_track_points.lat double precision", "trip_track_points.lng double precision",
                    "trip_track_points.heading double precision NULL", "trip_track_points.speed double precision NULL",
                    "trip_track_points.recorded bigint", "trip_track_points.accuracy double precision NULL",
                    "trips.id uuid", "trips.created bigint", "trips.updated bigint", "trips.pick_up_address text",
                    "trips.drop_off_address text", "trips.status text", "trips.rider_id bigint NULL",
                    "trips.driver_id bigint NULL", "trips.seq bigint", "trips.pick_up_lat double precision NULL",
                    "trips.pick_up_lng double precision NULL", "trips.drop_off_lat double precision NULL",
                    "trips.drop_off_lng double precision NULL", "trips.owner_node text NULL", "trips.cancel_reason text NULL",
                    "users.id bigint", "users.username text", "users.first_name text", "users.last_name text",
                    "users.grp text", "users.photo text NULL", "users.password_hash text",
                ]
            )
            let indexes = try await check.query(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'trips' ORDER BY indexname"
            ).map { $0[0] }
            #expect(indexes == ["trips_driver_id", "trips_owner_node", "trips_pkey", "trips_rider_id"])
            let options = try await check.query(
                "SELECT reloptions FROM pg_class WHERE oid = 'trips'::regclass"
            )[0][0]
            #expect(options == "{fillfactor=70}")
            await check.close()
        }
    }

    @Test("an unknown status in the database is reported as an error")
    func unknownStatus() async throws {
        try await Self.withSchema { url in
            let store = try await Self.migratedStore(url)
            let id = UUID()
            let check = PostgresConnection(url: url)
            try await check.query(
                "INSERT INTO trips VALUES ($1, 1, 2, 'A', 'B', 'CANCELLED', NULL, NULL)", [id]
            )
            await check.close()
            let expected = SnapshotStoreError.unreadableValue(
                table: "trips", column: "status", rowID: id.uuidString.lowercased(), value: "CANCELLED"
            )
            await #expect(throws: expected) { try await store.trip(id: id) }
            await #expect(throws: expected) { try await store.loadUnfinishedTrips() }
        }
    }

    @Test("rewriting unchanged rows leaves them alone")
    func unchangedRowsSkipped() async throws {
        try await Self.withSchema { url in
            let store = try await Self.migratedStore(url)
            let trips = (0..<10).map { _ in Samples.trip() }
            try await store.write(Samples.changes(trips: trips))
            let check = PostgresConnection(url: url)
            let before = try await check.query("SELECT id, xmin::text FROM trips ORDER BY id").map { $0[1] }
            var changed = trips
            changed[0].status = .started
            try await store.write(Samples.changes(trips: changed))
            let after = try await check.query("SELECT id, xmin::text FROM trips ORDER BY id").map { $0[1] }
            #expect(zip(before, after).filter { $0 != $1 }.count == 1)
            await check.close()
        }
    }
}
