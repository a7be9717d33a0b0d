import BenchSupport
import Hub
import Persistence

/// The persistence load of the latency benchmark: one snapshot of N changed trips after another
/// into the PostgreSQL store, with `interval` between the end of one write and the start of the
/// next — what the hub's snapshot loop (`SnapshotService`) does when N trips change per interval.
///
/// The sets are prepared beforehand and written in turn; consecutive sets differ in every row, so
/// no write is skipped as unchanged.
struct SnapshotLoad: Sendable {
    let store: PostgresSnapshotStore
    let sets: [ChangeSet]
    let interval: Duration

    /// Writes until `deadline` (a write started before it runs to its end), beginning with set
    /// number `first` (mod the number of sets); returns each write's duration in seconds.
    func run(until deadline: ContinuousClock.Instant, first: Int) async throws -> [Double] {
        var durations: [Double] = []
        let clock = ContinuousClock()
        while true {
            try await Task.sleep(for: interval)
            guard clock.now < deadline else { return durations }
            let changes = sets[(first + durations.count) % sets.count]
            durations.append(try await clock.measure { try await store.write(changes) }.inSeconds)
        }
    }
}
