import Foundation
import Synchronization
import Testing

@testable import Hub

/// Builders shared by the suites.
enum Fixture {
    static let epoch = Timestamp(microseconds: 1_800_000_000_000_000)

    static func trip(
        id: UUID = UUID(), status: TripStatus, riderID: Int? = 1, driverID: Int? = nil,
        created: Timestamp = epoch, updated: Timestamp = epoch
    ) -> Trip {
        Trip(
            id: id, created: created, updated: updated, pickUpAddress: "123 Main Street",
            dropOffAddress: "456 Piney Road", status: status, riderID: riderID, driverID: driverID
        )
    }

    static let request = TripRequest(pickUpAddress: "123 Main Street", dropOffAddress: "456 Piney Road")

    static func user(_ directory: UserDirectory, _ username: String, _ group: UserGroup) throws -> Principal {
        let user = try #require(
            directory.create(
                username: username, firstName: "First", lastName: "Last", group: group, photo: nil,
                passwordHash: "hash"
            )
        )
        return Principal(userID: user.id, group: user.group)
    }
}

/// The value or the hub's error of an async hub call, for checking refusals by code.
func outcome<T>(_ body: () async throws(HubError) -> T) async -> Result<T, HubError> {
    do {
        return .success(try await body())
    } catch {
        return .failure(error)
    }
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    func increment() { value.add(1, ordering: .relaxed) }

    var count: Int { value.load(ordering: .relaxed) }
}

/// Holds tasks back until every one of them is ready, then releases them together,
/// so that concurrent attempts really overlap instead of trickling in as they are created.
final class StartingGate: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Suspends until the gate opens.
    func wait() async {
        await withCheckedContinuation { continuation in
            let passNow = state.withLock { state in
                if state.isOpen { return true }
                state.waiters.append(continuation)
                return false
            }
            if passNow { continuation.resume() }
        }
    }

    var waiting: Int { state.withLock { $0.waiters.count } }

    /// Waits until `count` tasks wait at the gate, then lets them all go.
    func open(whenWaiting count: Int) async {
        while waiting < count { await Task.yield() }
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

extension Hub {
    /// A driver's fix through the one way in (`recordFix`), settled at once: what a socket does
    /// before its next request, so the fix is recorded when this returns.
    func recordAndSettle(_ fix: LocationFix, by sender: Principal, from mailbox: any Mailbox) async throws(HubError) {
        let receipt = try recordFix(fix, by: sender, from: mailbox)
        await receipt.settle()
    }
}
