import PostgresClient

/// One version of the PostgreSQL schema: SQL that takes the schema from `version - 1` to `version`.
public struct PostgresMigration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
}

/// The PostgreSQL schema's versions, applied in order by `PostgresSnapshotStore.migrate()`.
///
/// `schema_migrations` records the versions a database has. Migrating runs in one transaction
/// under an advisory lock, so hubs starting together neither apply a version twice nor see half
/// a schema. Append new versions at the end; never edit one that has shipped.
///
/// The list is one for every database, whatever hub runs on it: version 4 holds the tables a
/// cluster of hubs shares (the `Cluster` module reads and writes them), and a single hub's
/// database has them too, empty, so that it can become a cluster's later.
public enum PostgresMigrations {
    public static let all: [PostgresMigration] = [
        PostgresMigration(
            version: 1, name: "users, trips, driver positions, trip track points",
            sql: """
                CREATE TABLE users (
                    id BIGINT PRIMARY KEY,
                    username TEXT NOT NULL UNIQUE,
                    first_name TEXT NOT NULL,
                    last_name TEXT NOT NULL,
                    grp TEXT NOT NULL,
                    photo TEXT,
                    password_hash TEXT NOT NULL
                );
                -- created and updated: microseconds since 1970-01-01 UTC (Hub's Timestamp), exact.
                CREATE TABLE trips (
                    id UUID PRIMARY KEY,
                    created BIGINT NOT NULL,
                    updated BIGINT NOT NULL,
                    pick_up_address TEXT NOT NULL,
                    drop_off_address TEXT NOT NULL,
                    status TEXT NOT NULL,
                    rider_id BIGINT,
                    driver_id BIGINT
                );
                CREATE INDEX trips_rider_id ON trips (rider_id);
                CREATE INDEX trips_driver_id ON trips (driver_id);
                CREATE INDEX trips_status ON trips (status);
                -- The last known position of each driver; recorded in microseconds.
                CREATE TABLE driver_positions (
                    driver_id BIGINT PRIMARY KEY,
                    lat DOUBLE PRECISION NOT NULL,
                    lng DOUBLE PRECISION NOT NULL,
                    heading DOUBLE PRECISION,
                    speed DOUBLE PRECISION,
                    accuracy DOUBLE PRECISION,
                    recorded BIGINT NOT NULL
                );
                -- A trip's GPS track, in the order the driver sent it.
                CREATE TABLE trip_track_points (
                    trip_id UUID NOT NULL,
                    seq BIGINT NOT NULL,
                    lat DOUBLE PRECISION NOT NULL,
                    lng DOUBLE PRECISION NOT NULL,
                    heading DOUBLE PRECISION,
                    speed DOUBLE PRECISION,
                    recorded BIGINT NOT NULL,
                    PRIMARY KEY (trip_id, seq)
                );
                """
        ),
        PostgresMigration(
            version: 2, name: "trip seq and locations, track point accuracy",
            sql: """
                -- seq: the trip's latest event number; locations: where the rider wants to be
                -- picked up and dropped off, NULL when the client sent only addresses.
                ALTER TABLE trips
                    ADD COLUMN seq BIGINT NOT NULL DEFAULT 0,
                    ADD COLUMN pick_up_lat DOUBLE PRECISION,
                    ADD COLUMN pick_up_lng DOUBLE PRECISION,
                    ADD COLUMN drop_off_lat DOUBLE PRECISION,
                    ADD COLUMN drop_off_lng DOUBLE PRECISION;
                ALTER TABLE trip_track_points ADD COLUMN accuracy DOUBLE PRECISION;
                """
        ),
        PostgresMigration(
            version: 3, name: "trip updates stay on their page",
            sql: """
                -- No query can use an index on status (start-up reads unfinished trips with
                -- NOT (status = ANY ...)), and the index made every status change rewrite every
                -- index entry of the trip. Without it, a trip's update that changes no indexed
                -- column (most do not: rider and driver stay) can stay on its page (a HOT update,
                -- no index touched) when the page has room: pages are now filled to 70 %.
                DROP INDEX IF EXISTS trips_status;
                ALTER TABLE trips SET (fillfactor = 70);
                """
        ),
        PostgresMigration(
            version: 4, name: "cluster nodes and trip owners",
            sql: """
                -- Cluster mode: the hub nodes sharing this database, each with a lease that it
                -- renews (times from the database's clock, never a node's). A node whose lease ran
                -- out is taken over by another: its row deleted, its unfinished trips moved.
                -- incarnation tells one run of a node id from its next.
                CREATE TABLE cluster_nodes (
                    node_id TEXT PRIMARY KEY,
                    incarnation BIGINT NOT NULL,
                    lease_until TIMESTAMPTZ NOT NULL,
                    started TIMESTAMPTZ NOT NULL DEFAULT now()
                );
                -- The node that owns a trip (cluster mode); NULL: written by a single-node hub.
                -- It rarely changes, so the index seldom stands in the way of a HOT update.
                ALTER TABLE trips ADD COLUMN owner_node TEXT;
                CREATE INDEX trips_owner_node ON trips (owner_node);
                """
        ),
        PostgresMigration(
            version: 5, name: "why a trip was canceled",
            sql: """
                -- rider_canceled or no_driver_found for a CANCELED trip; NULL otherwise (and for
                -- trips canceled before the reason was kept).
                ALTER TABLE trips ADD COLUMN cancel_reason TEXT;
                """
        ),
    ]

    /// The newest version this build knows.
    public static var latestVersion: Int { all.last?.version ?? 0 }

    /// Key of the advisory lock taken while migrating (any constant unique to this use).
    static let lockKey: Int64 = 0x7461_7869_6875_6231  // "taxihub1"

    /// Applies the versions up to `target` that the database lacks, in order, in one transaction;
    /// returns them.
    static func apply(on connection: isolated PostgresConnection, upTo target: Int = latestVersion) throws -> [Int] {
        try connection.transaction { connection in
            try connection.query("SELECT pg_advisory_xact_lock($1)", [lockKey])
            try connection.execute(
                script: """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version INTEGER PRIMARY KEY,
                        name TEXT NOT NULL,
                        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                    )
                    """
            )
            let applied = Set(try appliedVersions(on: connection))
            var newlyApplied: [Int] = []
            for migration in all where migration.version <= target && !applied.contains(migration.version) {
                try connection.execute(script: migration.sql)
                try connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [migration.version, migration.name]
                )
                newlyApplied.append(migration.version)
            }
            return newlyApplied
        }
    }

    /// The versions recorded in `schema_migrations`, ascending.
    static func appliedVersions(on connection: isolated PostgresConnection) throws -> [Int] {
        try connection.query("SELECT version FROM schema_migrations ORDER BY version").map {
            try $0.decode(Int.self, at: 0)
        }
    }
}
