import Foundation
import Hub
import Persistence
import TestSupport
import Testing

/// The store contract for GPS data: trip seq and locations, driver positions, track points.
extension SnapshotStoreTests {
    /// Doubles at the edges: the coordinate limits, the smallest and largest magnitudes, a
    /// negative zero, and values with no short decimal form.
    static let edgeDoubles: [Double] = [
        90, -90, 180, -180, .leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude,
        -.greatestFiniteMagnitude, 0.1 + 0.2, 1 / 3, -0.0, 47.376_887_1, 1e-300, 123_456_789.123_456_78,
    ]

    /// A fix per edge double, which it carries in every field, and one with no optionals.
    static var edgeFixes: [LocationFix] {
        let lats = edgeDoubles.filter { (-90...90).contains($0) }
        let lngs = edgeDoubles.filter { (-180...180).contains($0) }
        var fixes = edgeDoubles.enumerated().map { index, value in
            LocationFix(
                point: GeoPoint(lat: lats[index % lats.count], lng: lngs[(index + 1) % lngs.count]), heading: value,
                speed: value, accuracy: value, timestamp: Timestamp(microseconds: Int64.max - Int64(index))
            )
        }
        fixes.append(LocationFix(point: GeoPoint(lat: 0, lng: 0), timestamp: Timestamp(microseconds: Int64.min)))
        return fixes
    }

    /// The bit patterns of a fix's doubles (nil for a missing one): `==` takes -0.0 for 0.0, bits do not.
    static func bits(_ fix: LocationFix) -> [UInt64?] {
        [fix.point.lat, fix.point.lng, fix.heading, fix.speed, fix.accuracy].map { $0?.bitPattern }
    }

    static func bits(_ trip: Trip) -> [UInt64?] {
        [trip.pickUpLocation?.lat, trip.pickUpLocation?.lng, trip.dropOffLocation?.lat, trip.dropOffLocation?.lng]
            .map { $0?.bitPattern }
    }

    /// The bit patterns `kind` gives back for `bits`. SQLite stores a REAL that equals an integer
    /// as that integer, so -0.0 comes back as 0.0 (the same number and point); all else is exact.
    static func stored(_ bits: [UInt64?], in kind: StoreKind) -> [UInt64?] {
        guard kind == .sqlite else { return bits }
        return bits.map { $0 == (-0.0).bitPattern ? (0.0).bitPattern : $0 }
    }

    @Test("trip seq, locations (nil too) and the CANCELED status round-trip exactly", arguments: StoreKind.allCases)
    func tripGPSFields(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            var trips = Self.edgeFixes.enumerated().map { index, fix in
                let dropOff = GeoPoint(lat: fix.point.lng / 2, lng: fix.point.lat * 2)
                return Samples.trip(TripStatus.allCases[index % TripStatus.allCases.count], driver: index)
                    .with(pickUp: fix.point, dropOff: dropOff, seq: Int64(index))
            }
            trips.append(Samples.trip(.canceled).with(pickUp: nil, dropOff: nil, seq: Int64.max))
            trips.append(Samples.trip(.started).with(pickUp: GeoPoint(lat: -0.0, lng: -180), dropOff: nil, seq: 1))
            trips.append(Samples.trip(.inProgress).with(pickUp: nil, dropOff: GeoPoint(lat: 90, lng: 180), seq: 2))
            try await store.write(Samples.changes(trips: trips))

            for trip in trips {
                let stored = try #require(try await store.trip(id: trip.id))
                #expect(stored == trip)
                #expect(Self.bits(stored) == Self.stored(Self.bits(trip), in: kind))
            }
        }
    }

    @Test(
        "driver positions round-trip exactly, nil optionals too, and the latest replaces the stored one",
        arguments: StoreKind.allCases
    )
    func driverPositions(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let positions = Self.edgeFixes.enumerated().map { DriverPosition(driverID: $0 + 1, fix: $1) }
            try await store.write(Samples.changes(positions: positions))
            let stored = try await fixture.driverPositions()
            #expect(stored == positions)
            #expect(stored.map { Self.bits($0.fix) } == positions.map { Self.stored(Self.bits($0.fix), in: kind) })

            let moved = DriverPosition(driverID: 1, fix: Samples.fix(9))
            try await store.write(Samples.changes(positions: [moved]))
            #expect(try await fixture.driverPositions() == [moved] + positions.dropFirst())
        }
    }

    @Test("track points round-trip exactly, optionals nil or set, ascending seq", arguments: StoreKind.allCases)
    func trackPoints(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let trip = Samples.trip(.inProgress, driver: 2)
            let other = Samples.trip(.inProgress, driver: 3)
            let points = Self.edgeFixes.enumerated().map { TrackPoint(tripID: trip.id, seq: Int64($0) * 3 + 1, fix: $1) }
            // Two writes, each out of order, and another trip's points in between.
            let half = points.count / 2
            let otherPoints = Samples.track(other.id, seqs: 1...3)
            try await store.write(
                Samples.changes(trips: [trip, other], trackPoints: points[half...].reversed() + otherPoints)
            )
            try await store.write(Samples.changes(trackPoints: points[..<half].reversed()))

            let stored = try await store.track(of: trip.id)
            #expect(stored == points)
            #expect(stored.map { Self.bits($0.fix) } == points.map { Self.stored(Self.bits($0.fix), in: kind) })
            #expect(try await store.track(of: other.id) == otherPoints)
            #expect(try await store.track(of: UUID()).isEmpty)
        }
    }

    @Test("writing the same track points again neither fails nor duplicates them", arguments: StoreKind.allCases)
    func repeatedTrackPoints(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            var trip = Samples.trip(.inProgress, driver: 2)
            let first = Samples.track(trip.id, seqs: 1...5)
            try await store.write(Samples.changes(trips: [trip], trackPoints: first))

            // A retried snapshot: the same points, newer ones after them, the trip moved on.
            trip.seq = 8
            let newer = Samples.track(trip.id, seqs: 6...8)
            let changed = TrackPoint(tripID: trip.id, seq: first[2].seq, fix: Samples.fix(99))
            try await store.write(Samples.changes(trips: [trip], trackPoints: first + [changed] + newer))

            #expect(try await store.track(of: trip.id) == first + newer)
            #expect(try await store.trip(id: trip.id) == trip)
        }
    }

    @Test("unfinished tracks are those of trips not finished, each ascending seq", arguments: StoreKind.allCases)
    func unfinishedTracks(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let trips = TripStatus.allCases.flatMap { status in (0..<2).map { _ in Samples.trip(status, driver: 2) } }
            let tracks = Dictionary(
                uniqueKeysWithValues: trips.enumerated().map { index, trip in
                    (trip.id, Samples.track(trip.id, seqs: (1...Int64(index + 3)).map { $0 * 2 }))
                }
            )
            let withoutPoints = Samples.trip(.started, driver: 5)
            // Points of all trips interleaved, newest first: the store sorts them.
            let interleaved = (0..<trips.count + 3).reversed().flatMap { index in
                trips.compactMap { tracks[$0.id]?.dropFirst(index).first }
            }
            try await store.write(Samples.changes(trips: trips + [withoutPoints], trackPoints: interleaved))

            let loaded = try await store.loadUnfinishedTracks()
            #expect(loaded == tracks.filter { id, _ in trips.contains { $0.id == id && !$0.status.isFinished } })
            #expect(loaded.count == trips.filter { !$0.status.isFinished }.count)
        }
    }

    @Test("CANCELED trips are finished: not loaded at start, listed in a user's history", arguments: StoreKind.allCases)
    func canceledIsFinished(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let canceled = Samples.trip(.canceled, rider: 7, driver: 2, created: Timestamp(microseconds: 20))
            let completed = Samples.trip(.completed, rider: 7, driver: 3, created: Timestamp(microseconds: 10))
            let open = Samples.trip(.started, rider: 8, driver: 2)
            try await store.write(
                Samples.changes(
                    trips: [canceled, completed, open],
                    trackPoints: Samples.track(canceled.id, seqs: 1...2) + Samples.track(open.id, seqs: 1...2)
                )
            )

            #expect(try await store.loadUnfinishedTrips() == [open])
            #expect(try await store.loadUnfinishedTracks() == [open.id: Samples.track(open.id, seqs: 1...2)])
            #expect(try await store.finishedTrips(involving: 7) == [canceled, completed])
            #expect(try await store.finishedTrips(involving: 2) == [canceled])
            #expect(try await store.trip(id: canceled.id) == canceled)
            #expect(try await store.track(of: canceled.id) == Samples.track(canceled.id, seqs: 1...2))
        }
    }

    @Test(
        "5,000 track points and 2,000 driver positions land in one write, and again unchanged",
        arguments: StoreKind.allCases
    )
    func largeGPSWrite(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let trips = (0..<50).map { Samples.trip(.inProgress, driver: $0 + 1) }
            let points = trips.flatMap { Samples.track($0.id, seqs: 1...100) }
            let positions = (1...2_000).map { DriverPosition(driverID: $0, fix: Samples.fix($0)) }
            let changes = Samples.changes(trips: trips, positions: positions, trackPoints: points)
            try await store.write(changes)
            try await store.write(changes)

            let tracks = try await store.loadUnfinishedTracks()
            #expect(tracks.count == trips.count)
            #expect(tracks.values.flatMap(\.self).count == points.count)
            for trip in trips {
                #expect(tracks[trip.id] == Samples.track(trip.id, seqs: 1...100))
            }
            #expect(try await fixture.driverPositions() == positions)
        }
    }

    @Test("a location with only one of its coordinates stored is reported as an error", arguments: StoreKind.allCases)
    func halfLocation(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let trip = Samples.trip().with(pickUp: GeoPoint(lat: 1, lng: 2), dropOff: GeoPoint(lat: 3, lng: 4), seq: 1)
            try await store.write(Samples.changes(trips: [trip]))
            try await fixture.execute("UPDATE trips SET drop_off_lng = NULL")

            let expected = SnapshotStoreError.unreadableValue(
                table: "trips", column: "drop_off_lng", rowID: trip.id.uuidString.lowercased(), value: "NULL"
            )
            await #expect(throws: expected) { try await store.trip(id: trip.id) }
        }
    }

    @Test("a version 1 database migrates to version 2 and keeps its rows", arguments: StoreKind.allCases)
    func migrateFromVersion1(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            try await fixture.createVersion1Schema()
            let id = UUID()
            try await fixture.execute(
                """
                INSERT INTO users VALUES (1, 'old', 'Old', 'User', 'rider', NULL, 'hash');
                INSERT INTO trips (id, created, updated, pick_up_address, drop_off_address, status, rider_id, driver_id)
                VALUES ('\(id.uuidString.lowercased())', 10, 20, 'A', 'B', 'STARTED', 1, 2)
                """
            )
            if kind == .postgres {
                // Version 1 of PostgreSQL already had track points, without accuracy.
                try await fixture.execute(
                    "INSERT INTO trip_track_points VALUES ('\(id.uuidString.lowercased())', 3, 1.5, -2.5, 90, NULL, 30)"
                )
            }

            let store = try await fixture.open()
            let user = User(
                id: 1, username: "old", firstName: "Old", lastName: "User", group: .rider, photo: nil, passwordHash: "hash"
            )
            #expect(try await store.loadUsers() == [user])
            let old = Trip(
                id: id, created: Timestamp(microseconds: 10), updated: Timestamp(microseconds: 20), pickUpAddress: "A",
                dropOffAddress: "B", status: .started, riderID: 1, driverID: 2
            )
            #expect(try await store.loadUnfinishedTrips() == [old])
            let oldTrack = kind == .postgres
                ? [TrackPoint(
                    tripID: id, seq: 3,
                    fix: LocationFix(
                        point: GeoPoint(lat: 1.5, lng: -2.5), heading: 90, timestamp: Timestamp(microseconds: 30)
                    )
                )]
                : []
            #expect(try await store.track(of: id) == oldTrack)

            // The new columns take new values.
            var moved = old.with(pickUp: GeoPoint(lat: 1, lng: 2), dropOff: GeoPoint(lat: 3, lng: 4), seq: 4)
            moved.status = .inProgress
            let point = TrackPoint(tripID: id, seq: 4, fix: Samples.fix(4))
            try await store.write(Samples.changes(trips: [moved], trackPoints: [point]))
            #expect(try await store.trip(id: id) == moved)
            #expect(try await store.loadUnfinishedTracks() == [id: oldTrack + [point]])
        }
    }

    @Test("every store names its tables, columns and indexes alike", arguments: StoreKind.allCases)
    func schemaNames(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            _ = try await fixture.open()
            let expected = [
                "driver_positions": ["driver_id", "lat", "lng", "heading", "speed", "accuracy", "recorded"],
                "trip_track_points": ["trip_id", "seq", "lat", "lng", "heading", "speed", "accuracy", "recorded"],
                "trips": [
                    "id", "created", "updated", "pick_up_address", "drop_off_address", "status", "rider_id", "driver_id",
                    "seq", "pick_up_lat", "pick_up_lng", "drop_off_lat", "drop_off_lng", "cancel_reason",
                ],
                "users": ["id", "username", "first_name", "last_name", "grp", "photo", "password_hash"],
            ]
            var named = expected.flatMap { table, columns in columns.map { "\(table).\($0)" } }
            var indexes = ["trips.trips_driver_id", "trips.trips_rider_id"]
            if kind == .postgres {
                // Cluster mode (PostgreSQL only): node leases and trip owners.
                named += ["node_id", "incarnation", "lease_until", "started"].map { "cluster_nodes.\($0)" }
                named.append("trips.owner_node")
                indexes.append("trips.trips_owner_node")
            }
            #expect(try await fixture.columns() == named.sorted())
            #expect(try await fixture.indexes() == indexes.sorted())
        }
    }
}

extension Trip {
    /// This trip with GPS fields set.
    func with(pickUp: GeoPoint?, dropOff: GeoPoint?, seq: Int64) -> Trip {
        var trip = self
        trip.pickUpLocation = pickUp
        trip.dropOffLocation = dropOff
        trip.seq = seq
        return trip
    }
}
