import Benchmark
import BenchmarkWorkloads
import BenchSupport
import Foundation
import Hub
import Synchronization

/// A driver's GPS fix through the hub, the whole way a socket's fix goes after parsing:
/// `Hub.recordFix` (validation, the driver map, the change set) and, for a driver who drives a
/// trip, the trip actor's record of it (`FixReceipt.settle`: its track, the change set and the
/// rider's `trip.location`). One sample is 1,000 fixes, each from the next driver in turn, one
/// after another; the change set is drained after each sample, as the snapshot loop would.
let benchmarks: @Sendable () -> Void = {
    for (drivers, driving) in [(10_000, false), (1_000, true), (10_000, true)] {
        let fleet = Fleet()
        Benchmark(
            driving ? "\(drivers)-drivers-driving" : "\(drivers)-drivers-without-trips",
            configuration: HotPath.configuration(),
            closure: { benchmark in
                let hub = fleet.hub!
                for _ in benchmark.scaledIterations {
                    let (driver, mailbox, point) = fleet.next()
                    let fix = LocationFix(point: point, heading: 90, speed: 10, accuracy: 5, timestamp: hub.clock.now())
                    do {
                        try await hub.recordFix(fix, by: driver, from: mailbox).settle()
                    } catch {
                        benchmark.error("recordFix refused a fix: \(error)")
                        return
                    }
                }
                benchmark.stopMeasurement()
                blackHole(hub.changes.drain())
            },
            setup: { try await fleet.populate(drivers: drivers, driving: driving) }
        )
    }
}

/// A hub with connected drivers (each driving a started trip of its own rider, or not) and the
/// points their fixes go round.
final class Fleet {
    struct Refused: Error {}

    private(set) var hub: Hub?
    /// Every fix's mailbox, riders' and drivers' alike.
    let deliveries = CountingMailbox.Counter()
    private var drivers: [(Principal, CountingMailbox)] = []
    private var points: [GeoPoint] = []
    private var nextFix = 0

    func populate(drivers count: Int, driving: Bool) async throws {
        let hub = Hub()
        var random = SplitMix64(seed: 7)
        for index in 0..<count {
            let driver = try principal(hub, "driver\(index)", .driver)
            let driverBox = CountingMailbox(deliveries)
            _ = await hub.connect(driver, mailbox: driverBox)
            if driving {
                let rider = try principal(hub, "rider\(index)", .rider)
                let riderBox = CountingMailbox(deliveries)
                _ = await hub.connect(rider, mailbox: riderBox)
                let request = TripRequest(
                    pickUpAddress: "A", dropOffAddress: "B", pickUpLocation: DriverArea.city.randomPoint(using: &random)
                )
                let trip = try await hub.createTrip(request, by: rider, from: riderBox)
                _ = try await hub.updateTrip(id: trip.trip.id, TripUpdate(status: .started), by: driver, from: driverBox)
            }
            drivers.append((driver, driverBox))
        }
        _ = hub.changes.drain()
        points = (0..<4_096).map { _ in DriverArea.city.randomPoint(using: &random) }
        self.hub = hub
    }

    /// The next driver in turn, and where its fix puts it.
    func next() -> (Principal, CountingMailbox, GeoPoint) {
        nextFix &+= 1
        let (driver, mailbox) = drivers[nextFix % drivers.count]
        return (driver, mailbox, points[nextFix & (points.count - 1)])
    }

    private func principal(_ hub: Hub, _ name: String, _ group: UserGroup) throws -> Principal {
        guard let user = hub.users.create(username: name, firstName: "L", lastName: "B", group: group, photo: nil, passwordHash: "-") else {
            throw Refused()
        }
        return Principal(userID: user.id, group: group)
    }
}

/// A mailbox that only counts what reaches it.
final class CountingMailbox: Mailbox {
    /// Deliveries across all mailboxes of a run.
    final class Counter: Sendable {
        private let count = Atomic<Int>(0)
        func add() { count.add(1, ordering: .relaxed) }
        var value: Int { count.load(ordering: .relaxed) }
    }

    private static let nextID = Atomic<UInt64>(1)
    let connectionID = ConnectionID(CountingMailbox.nextID.add(1, ordering: .relaxed).oldValue)
    private let counter: Counter

    init(_ counter: Counter) {
        self.counter = counter
    }

    func deliver(_ event: HubEvent) { counter.add() }

    func replay(_ events: [HubEvent]) { events.forEach { _ in counter.add() } }
}
