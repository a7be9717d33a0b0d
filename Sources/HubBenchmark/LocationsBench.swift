import ArgumentParser
import BenchSupport
import Foundation
import Histogram
import Hub
import Synchronization

/// `hub-bench locations`: GPS fixes through the hub's actors, in process: each driver drives a
/// trip, and every fix goes the whole way a socket's fix goes after parsing (validation, the
/// driver map, the change set, the trip actor, its track and the rider's mailbox).
struct LocationsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "locations",
        abstract: "Measure location-update throughput through the trip actors.",
        discussion: """
            Every driver is a task sending its fixes one after another (each awaits the hub), all \
            drivers at once; a background task drains the change set every second as the snapshot \
            loop would. Results go to stdout as a Markdown table; progress to stderr.
            """
    )

    @Option(help: "Driver counts (each with a rider and an active trip), comma-separated.", transform: Parse.integers)
    var drivers: [Int] = [100, 1_000, 10_000]

    @Option(help: "Fixes each driver sends per run.")
    var fixes = 200

    func validate() throws {
        guard !drivers.isEmpty, drivers.allSatisfy({ $0 > 0 }), fixes > 0 else {
            throw ValidationError("--drivers and --fixes must be positive.")
        }
    }

    func run() async throws {
        var lines = [
            "| drivers | fixes | fixes/s | median µs per fix | p99 µs | deliveries to riders |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for count in drivers {
            let result = try await measure(driverCount: count)
            progress.log("\(Format.count(count)) drivers: \(Format.count(Int(result.rate))) fixes/s, p99 \(Format.microseconds(result.histogram.valueAtPercentile(99))) µs")
            lines.append(
                "| \(Format.count(count)) | \(Format.count(count * fixes)) | \(Format.count(Int(result.rate))) | "
                    + "\(Format.microseconds(result.histogram.valueAtPercentile(50))) | "
                    + "\(Format.microseconds(result.histogram.valueAtPercentile(99))) | \(Format.count(result.deliveries)) |"
            )
        }
        print(lines.joined(separator: "\n"))
    }

    private struct Result {
        let rate: Double
        let histogram: Histogram<UInt64>
        let deliveries: Int
    }

    private func measure(driverCount: Int) async throws -> Result {
        let hub = Hub()
        let deliveries = CountingMailbox.Counter()
        var drivers: [(Principal, CountingMailbox)] = []
        var random = SplitMix64(seed: 7)
        for index in 0..<driverCount {
            let rider = try principal(hub, "rider\(index)", .rider)
            let driver = try principal(hub, "driver\(index)", .driver)
            let riderBox = CountingMailbox(deliveries)
            let driverBox = CountingMailbox(deliveries)
            _ = await hub.connect(rider, mailbox: riderBox)
            _ = await hub.connect(driver, mailbox: driverBox)
            let request = TripRequest(pickUpAddress: "A", dropOffAddress: "B", pickUpLocation: DriverArea.city.randomPoint(using: &random))
            let trip = try await hub.createTrip(request, by: rider, from: riderBox)
            _ = try await hub.updateTrip(id: trip.trip.id, TripUpdate(status: .started), by: driver, from: driverBox)
            drivers.append((driver, driverBox))
        }
        _ = hub.changes.drain()
        deliveries.reset()
        let draining = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                _ = hub.changes.drain()
            }
        }
        defer { draining.cancel() }
        let fixes = self.fixes
        let start = MonotonicClock.nanoseconds()
        let histogram = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
            for (index, (driver, mailbox)) in drivers.enumerated() {
                group.addTask {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .two)
                    var random = SplitMix64(seed: UInt64(index))
                    for _ in 0..<fixes {
                        let fix = LocationFix(point: DriverArea.city.randomPoint(using: &random), speed: 10, timestamp: .now())
                        let sent = MonotonicClock.nanoseconds()
                        try await hub.recordFix(fix, by: driver, from: mailbox).settle()
                        _ = histogram.record(MonotonicClock.nanoseconds() - sent)
                    }
                    return histogram
                }
            }
            var total = Histogram<UInt64>(highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .two)
            for try await part in group { total.add(part) }
            return total
        }
        let seconds = Double(MonotonicClock.nanoseconds() - start) / 1e9
        return Result(rate: Double(driverCount * fixes) / seconds, histogram: histogram, deliveries: deliveries.value)
    }

    private func principal(_ hub: Hub, _ name: String, _ group: UserGroup) throws -> Principal {
        guard let user = hub.users.create(username: name, firstName: "L", lastName: "B", group: group, photo: nil, passwordHash: "-") else {
            throw ValidationError("could not create \(name)")
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
        func reset() { count.store(0, ordering: .relaxed) }
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
