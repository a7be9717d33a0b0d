import Foundation
import Synchronization

@testable import Hub

/// Source of unique connection ids for test mailboxes.
private let nextConnectionID = Atomic<UInt64>(1)

/// A socket stand-in: records every event the hub delivers, in delivery order.
final class TestMailbox: Mailbox {
    let connectionID: ConnectionID
    private let received = Mutex<[HubEvent]>([])

    init() {
        connectionID = ConnectionID(nextConnectionID.add(1, ordering: .relaxed).oldValue)
    }

    func deliver(_ event: HubEvent) {
        received.withLock { $0.append(event) }
    }

    func replay(_ events: [HubEvent]) {
        received.withLock { $0.append(contentsOf: events) }
    }

    /// Every event received so far.
    var events: [HubEvent] { received.withLock { $0 } }

    /// The trip states received so far (offers too), in delivery order.
    var trips: [TripView] {
        events.compactMap(\.tripState)
    }

    /// The locations received so far, in delivery order.
    var locations: [TripLocation] {
        events.compactMap { event in
            if case .location(let location) = event { location } else { nil }
        }
    }

    /// The statuses of the trips received so far, in delivery order.
    var statuses: [TripStatus] { trips.map(\.trip.status) }
}
