import Foundation
@_spi(Simulation) import Hub
import Synchronization

/// The single hub's write-ahead journal (`TripJournal`) as the simulation keeps it: an in-memory
/// "disk" of segments that belongs to the harness, not to a hub, so it survives every simulated
/// crash, as the journal's files survive a killed process.
///
/// It mirrors the product's segment rules: appends go to the current segment; a snapshot closes
/// it (`rotate`, right before its drain) and, once its write succeeded, deletes the closed
/// segments (`dropSegments`); a restart replays every record into the store
/// (`JournalRecovery.merge`) and deletes what it replayed (`takeForReplay`).
///
/// It also remembers every trip state and account that ever became durable here (or was loaded
/// from the store at a restart), even after its segment is dropped: the oracle the harness asks,
/// the moment a client is handed a trip state or an answer, whether that state was durable then.
final class SimJournal: Sendable {
    struct Record: Sendable {
        let segment: UInt64
        let change: DurableChange
    }

    private struct State {
        var records: [Record] = []
        var segment: UInt64 = 1
        var segmentHasRecords = false
        /// Every durable trip state, by trip and `seq`.
        var durableTrips: [UUID: [Int64: Trip]] = [:]
        var durableUsers: [Int: User] = [:]
    }

    private let state = Mutex(State())

    /// Appends a batch to the current segment: from now on it is on disk.
    func append(_ batch: [DurableChange]) {
        state.withLock { state in
            for change in batch {
                state.records.append(Record(segment: state.segment, change: change))
                switch change {
                case .trip(let trip): state.durableTrips[trip.id, default: [:]][trip.seq] = trip
                case .user(let user): state.durableUsers[user.id] = user
                }
            }
            if !batch.isEmpty { state.segmentHasRecords = true }
        }
    }

    /// Closes the current segment (when it holds anything) and returns the newest closed one, as
    /// `TripJournal.rotate` does.
    func rotate() -> UInt64 {
        state.withLock { state in
            guard state.segmentHasRecords else { return state.segment - 1 }
            state.segment += 1
            state.segmentHasRecords = false
            return state.segment - 1
        }
    }

    /// Deletes the closed segments up to `number` (never the current one), as `TripJournal.dropSegments`.
    func dropSegments(through number: UInt64) {
        state.withLock { state in
            let current = state.segment
            state.records.removeAll { $0.segment <= number && $0.segment < current }
        }
    }

    /// At a restart: every record on disk, oldest first; the disk is emptied (the product deletes
    /// the segments it replayed once the store has them) and new records go to a new segment.
    func takeForReplay() -> [DurableChange] {
        state.withLock { state in
            defer {
                state.records = []
                if state.segmentHasRecords { state.segment += 1 }
                state.segmentHasRecords = false
            }
            return state.records.map(\.change)
        }
    }

    /// Records on disk now.
    var recordCount: Int { state.withLock { $0.records.count } }

    /// True when exactly this state of the trip was durable (journaled, or loaded from the store
    /// at a restart).
    func isDurable(_ trip: Trip) -> Bool {
        state.withLock { $0.durableTrips[trip.id]?[trip.seq] == trip }
    }

    func isDurable(_ user: User) -> Bool {
        state.withLock { $0.durableUsers[user.id] == user }
    }

    /// A trip state a restarted hub loaded from the store (under its restart `seq`): durable.
    func markRestored(_ trip: Trip) {
        state.withLock { $0.durableTrips[trip.id, default: [:]][trip.seq] = trip }
    }

    /// Accounts in the store at a restart (or written before the run): durable.
    func markRestored(_ user: User) {
        state.withLock { $0.durableUsers[user.id] = user }
    }
}

/// One hub's way to its journal, as the `write` of its `GroupCommitLog`: appends each batch to
/// the harness's `SimJournal`, with faults drawn from the run's seed in write order, as
/// `SimStore` draws them:
///
/// - stall: the write waits some simulated steps (the disk is slow), either before the batch
///   reaches the disk or after (it is on disk, but `fdatasync` has not returned yet);
/// - fail for good: the write throws (the disk is gone); the log then fails, every waiter gets
///   `unavailable`, and the harness stops the process a few steps later, as `ProcessExit` does.
///
/// When the hub crashes (`kill`), every write from then on, a stalled one included, throws and
/// appends nothing: a batch whose write had not reached the disk is not durable. Rotation and
/// trimming of the journal go through here too, so a dead hub's snapshot cannot touch the disk.
final class SimJournalWriter: Sendable {
    struct Faults: Sendable {
        var stall = 0.0
        /// Of stalled writes, the share that stall after reaching the disk.
        var stallAfterWrite = 0.5
        var failForGood = 0.0
        var maxStallSteps = 20
    }

    /// What the harness learns of each write, in order.
    struct WriteRecord: Sendable {
        enum Outcome: Sendable {
            case durable
            /// Thrown: the disk failed for good.
            case failed
            /// Thrown: the hub crashed (or had failed) before the write reached the disk.
            case killed
        }

        let step: Int
        let changes: Int
        let stalledSteps: Int
        let outcome: Outcome
    }

    struct DiskFailure: Error, CustomStringConvertible {
        let killed: Bool
        var description: String { killed ? "the hub is gone" : "simulated journal failure (EIO)" }
    }

    private let journal: SimJournal
    private let scheduler: SimScheduler
    private let faults: Faults
    private let random: Mutex<SimRandom>
    private let currentStep: @Sendable () -> Int
    private let records = Mutex<[WriteRecord]>([])
    private let enabled = Mutex(true)
    private let killed = Mutex(false)
    private let failure = Mutex<String?>(nil)

    init(
        journal: SimJournal, scheduler: SimScheduler, faults: Faults, seed: UInt64, currentStep: @escaping @Sendable () -> Int
    ) {
        self.journal = journal
        self.scheduler = scheduler
        self.faults = faults
        self.random = Mutex(SimRandom(seed: seed))
        self.currentStep = currentStep
    }

    /// Whether writes stall and fail at all (off while a run drains and checks its end).
    var faultsEnabled: Bool {
        get { enabled.withLock { $0 } }
        set { enabled.withLock { $0 = newValue } }
    }

    /// The hub crashed: nothing it still does reaches the disk.
    func kill() {
        killed.withLock { $0 = true }
    }

    private var isKilled: Bool { killed.withLock { $0 } }

    /// The commit log ended (its `onFailure`): the process is to stop.
    func logFailed(_ error: any Error) {
        failure.withLock { $0 = "\(error)" }
    }

    /// Why the log failed, once it did.
    var logFailure: String? { failure.withLock { $0 } }

    /// Takes the writes finished (or failed) since the last call.
    func takeRecords() -> [WriteRecord] {
        records.withLock { records in
            defer { records = [] }
            return records
        }
    }

    func write(_ batch: [DurableChange]) async throws {
        let step = currentStep()
        guard !isKilled else {
            record(step, batch, stalled: 0, .killed)
            throw DiskFailure(killed: true)
        }
        let enabled = faultsEnabled
        let (stall, stallAfter, fail, stallSteps) = random.withLock { random in
            (enabled && random.chance(faults.stall), random.chance(faults.stallAfterWrite),
             enabled && random.chance(faults.failForGood), 1 + random.index(max(1, faults.maxStallSteps)))
        }
        let stalled = stall ? stallSteps : 0
        if stall, !stallAfter {
            await scheduler.sleep(until: currentStep() + stallSteps)
            guard !isKilled else {
                record(step, batch, stalled: stalled, .killed)
                throw DiskFailure(killed: true)
            }
        }
        if fail {
            record(step, batch, stalled: stalled, .failed)
            throw DiskFailure(killed: false)
        }
        journal.append(batch)
        if stall, stallAfter {
            // On disk, but the hub has not heard so yet; if it dies meanwhile, the batch is durable
            // though no one was told.
            await scheduler.sleep(until: currentStep() + stallSteps)
            guard !isKilled else {
                record(step, batch, stalled: stalled, .killed)
                throw DiskFailure(killed: true)
            }
        }
        record(step, batch, stalled: stalled, .durable)
    }

    private func record(_ step: Int, _ batch: [DurableChange], stalled: Int, _ outcome: WriteRecord.Outcome) {
        records.withLock { $0.append(WriteRecord(step: step, changes: batch.count, stalledSteps: stalled, outcome: outcome)) }
    }

    /// `TripJournal.rotate`, for this hub's snapshot; nil once the hub is dead.
    func rotate() -> UInt64? {
        isKilled ? nil : journal.rotate()
    }

    /// `TripJournal.dropSegments`, for this hub's snapshot once its write succeeded.
    func dropSegments(through number: UInt64?) {
        guard let number, number > 0, !isKilled else { return }
        journal.dropSegments(through: number)
    }
}

/// A bug planted in the simulated commit log, to prove the simulator finds a hub that
/// acknowledges changes before they are durable (planted-bug test only).
@_spi(Simulation)
public enum PlantedCommitBug: Sendable, Equatable {
    /// The log says every position is durable the moment it is appended, before the batch reaches
    /// the disk: trip actors release events and the hub answers at once, as if `TripActor` did not
    /// wait for the commit (the product's `PlantedBug` could plant the same in `TripActor`).
    case acknowledgesEarly
}

/// The commit log of `PlantedCommitBug.acknowledgesEarly`: writes go through the real group
/// commit log (and may stall, fail or die in a crash), but every position counts as durable at once.
final class EarlyAcknowledgingLog: CommitLog {
    let base: GroupCommitLog

    init(base: GroupCommitLog) {
        self.base = base
    }

    func append(_ change: DurableChange) -> CommitPosition {
        base.append(change)
    }

    func isDurable(_ position: CommitPosition) -> Bool { true }

    func whenDurable(_ position: CommitPosition, _ done: @escaping @Sendable (HubError?) -> Void) {
        done(nil)
    }
}
