import Foundation
import Hub
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing
@testable import Persistence

/// The snapshot loop: periodic writes, fault handling and the final flush.
@Suite("Snapshot service", MachineLoad.shared)
struct SnapshotServiceTests {
    /// Quiet: the failures these tests provoke on purpose would only clutter the output.
    private static let logger = Logger(label: "taxihub.tests.snapshot") { _ in SwiftLogNoOpLogHandler() }

    private static func service(
        _ store: any SnapshotStore, _ tracker: ChangeTracker, interval: Duration = .milliseconds(50),
        status: SnapshotStatus = SnapshotStatus(), onPersisted: @escaping @Sendable (ChangeSet) async -> Void = { _ in }
    ) -> SnapshotService {
        SnapshotService(
            store: store, tracker: tracker, interval: interval, status: status, logger: logger, onPersisted: onPersisted
        )
    }

    /// Polls `condition` until it holds or `timeout` passes; returns whether it held. The bound is
    /// generous: the SQLite store writes on a thread at nice 10, which a CI run of every suite at
    /// once on two cores can starve for seconds (one CI run missed a 5 s bound).
    private static func eventually(
        timeout: Duration = .seconds(30), _ condition: () async throws -> Bool
    ) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await condition()
    }

    @Test("changes reach the store within a few intervals while running")
    func periodicWrites() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = try await fixture.open()
            let tracker = ChangeTracker()
            let status = SnapshotStatus()
            let persisted = Mutex<[ChangeSet]>([])
            let service = Self.service(store, tracker, status: status) { set in persisted.withLock { $0.append(set) } }
            let user = Samples.user(1)
            let trip = Samples.trip(.completed, rider: 1)

            try await withThrowingTaskGroup { group in
                group.addTask { try await service.run() }
                tracker.record(user)
                tracker.record(trip)
                #expect(try await Self.eventually { try await store.trip(id: trip.id) == trip })
                group.cancelAll()
                try await group.waitForAll()
            }
            #expect(try await store.loadUsers() == [user])
            #expect(tracker.pendingCount == 0)
            #expect(persisted.withLock { $0 } == [Samples.changes(users: [user], trips: [trip])])
            let current = status.current
            #expect(current.lastWriteCount == 2)
            #expect(current.totalWrites == 1)
            #expect(current.lastSuccess != nil)
            #expect(current.lastError == nil)
        }
    }

    @Test("nothing is written when nothing changed")
    func idle() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = FlakyStore(try await fixture.open())
            let status = SnapshotStatus()
            let service = Self.service(store, ChangeTracker(), interval: .milliseconds(20), status: status)

            try await withThrowingTaskGroup { group in
                group.addTask { try await service.run() }
                #expect(try await Self.eventually { status.current.lastSuccess != nil })
                try await Task.sleep(for: .milliseconds(100))
                group.cancelAll()
                try await group.waitForAll()
            }
            #expect(store.writeCount == 0)
            #expect(status.current.totalWrites == 0)
            #expect(status.current.lastWriteCount == 0)
            #expect(status.lagSeconds() < 1)
        }
    }

    @Test("a failed write gives the changes back without overwriting newer values")
    func failedWriteRestores() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let tracker = ChangeTracker()
            let user = Samples.user(1)
            let old = Samples.trip(.requested, rider: 1)
            var newer = old
            newer.status = .started
            newer.driverID = 2
            let recordNewer = newer
            let store = FlakyStore(try await fixture.open(), failures: 1) { tracker.record(recordNewer) }
            let status = SnapshotStatus()
            let service = Self.service(store, tracker, status: status)

            tracker.record(user)
            tracker.record(old)
            await #expect(throws: FlakyStore.Outage.self) { try await service.flush() }

            #expect(tracker.pendingCount == 2)
            #expect(status.current.consecutiveFailures == 1)
            #expect(status.current.lastError != nil)
            #expect(status.current.lastSuccess == nil)
            #expect(try await store.trip(id: old.id) == nil)

            try await service.flush()
            #expect(try await store.trip(id: old.id) == newer)
            #expect(try await store.loadUsers() == [user])
            #expect(tracker.pendingCount == 0)
            #expect(status.current.consecutiveFailures == 0)
            #expect(status.current.lastError == nil)
            #expect(status.current.totalFailures == 1)
        }
    }

    @Test("the loop keeps retrying a failing store until the changes land")
    func retriesUntilStoreReturns() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = FlakyStore(try await fixture.open(), failures: 3)
            let tracker = ChangeTracker()
            let status = SnapshotStatus()
            let service = Self.service(store, tracker, interval: .milliseconds(10), status: status)
            let trip = Samples.trip()

            try await withThrowingTaskGroup { group in
                group.addTask { try await service.run() }
                tracker.record(trip)
                #expect(try await Self.eventually { try await store.trip(id: trip.id) == trip })
                group.cancelAll()
                try await group.waitForAll()
            }
            #expect(status.current.totalFailures == 3)
            #expect(status.current.consecutiveFailures == 0)
            #expect(store.writeCount == 1)
        }
    }

    @Test("cancellation ends the loop with a final flush of pending changes")
    func finalFlushOnCancel() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = try await fixture.open()
            let tracker = ChangeTracker()
            let service = Self.service(store, tracker, interval: .seconds(3600))
            let trip = Samples.trip()

            try await withThrowingTaskGroup { group in
                group.addTask { try await service.run() }
                tracker.record(trip)
                group.cancelAll()
                try await group.waitForAll()
            }
            #expect(try await store.trip(id: trip.id) == trip)
            #expect(tracker.pendingCount == 0)
        }
    }

    @Test("graceful shutdown ends the loop with a final flush, retrying a failing store")
    func finalFlushOnGracefulShutdown() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = FlakyStore(try await fixture.open(), failures: 2)
            let tracker = ChangeTracker()
            let service = Self.service(store, tracker, interval: .seconds(3600))
            let group = ServiceGroup(services: [service], logger: Self.logger)
            let user = Samples.user(4, group: .driver)

            try await withThrowingTaskGroup { tasks in
                tasks.addTask { try await group.run() }
                tracker.record(user)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(try await store.loadUsers() == [user])
            #expect(store.writeCount == 1)
        }
    }

    @Test("backoff doubles per consecutive failure up to 30 seconds")
    func backoff() {
        let interval = Duration.seconds(1)
        #expect(SnapshotService.delay(afterFailures: 0, interval: interval) == .seconds(1))
        #expect(SnapshotService.delay(afterFailures: 1, interval: interval) == .seconds(2))
        #expect(SnapshotService.delay(afterFailures: 3, interval: interval) == .seconds(8))
        #expect(SnapshotService.delay(afterFailures: 5, interval: interval) == .seconds(30))
        #expect(SnapshotService.delay(afterFailures: 1_000, interval: interval) == .seconds(30))
        #expect(SnapshotService.delay(afterFailures: 2, interval: .seconds(60)) == .seconds(60))
    }

    @Test("lag counts from the last success, or from the start before any")
    func lag() {
        let start = Timestamp(microseconds: 1_000_000)
        let status = SnapshotStatus(started: start)
        #expect(status.lagSeconds(now: Timestamp(microseconds: 3_500_000)) == 2.5)
        status.recordNothingPending(at: Timestamp(microseconds: 3_000_000))
        #expect(status.lagSeconds(now: Timestamp(microseconds: 3_250_000)) == 0.25)
        #expect(status.current.lagSeconds(now: Timestamp(microseconds: 2_000_000)) == 0)
    }
}
