import BenchSupport
import NIOCore
import Synchronization

/// The simulated drivers and riders of one load phase, and what they share: the city, the
/// settings, the measurements, the event loops that time their pauses, and whether the run
/// still goes on.
final class CityTraffic: Sendable {
    let settings: LoadTestSettings
    let city: CityModel
    let measurements: Measurements
    let loops: any EventLoopGroup
    let driverList: [SimulatedDriver]
    let riderList: [SimulatedRider]
    /// By user id.
    let drivers: [Int: SimulatedDriver]
    let riders: [Int: SimulatedRider]
    private let running = Atomic<Bool>(true)

    init(
        settings: LoadTestSettings, city: CityModel, measurements: Measurements, loops: any EventLoopGroup, drivers: [SimulatedDriver],
        riders: [SimulatedRider]
    ) {
        self.settings = settings
        self.city = city
        self.measurements = measurements
        self.loops = loops
        driverList = drivers
        riderList = riders
        self.drivers = Dictionary(uniqueKeysWithValues: drivers.map { ($0.id, $0) })
        self.riders = Dictionary(uniqueKeysWithValues: riders.map { ($0.id, $0) })
    }

    /// False once the run ends: riders request no more trips, and closes are expected.
    var isRunning: Bool { running.load(ordering: .acquiring) }

    func stop() { running.store(false, ordering: .releasing) }

    /// The requests still waiting for a driver now, and how long the oldest has waited (seconds;
    /// 0 when none waits).
    func waitingRequests(now: UInt64 = MonotonicClock.nanoseconds()) -> (count: Int, oldestSeconds: Double) {
        var count = 0
        var oldest: UInt64 = now
        for rider in riderList {
            guard let since = rider.waitingSince else { continue }
            count += 1
            oldest = min(oldest, since)
        }
        return (count, Double(now > oldest ? now - oldest : 0) / 1e9)
    }

    /// Once a second: every simulated user checks for a trip that went silent.
    func watch() {
        for driver in driverList { driver.watch() }
        for rider in riderList { rider.watch(in: self) }
    }
}
