import Synchronization

/// The simulated drivers and riders of one load phase, and what they share: the city, the
/// settings, the measurements, and whether the run still goes on.
final class Simulation: Sendable {
    let settings: LoadTestSettings
    let city: CityModel
    let measurements: Measurements
    let driverList: [SimulatedDriver]
    let riderList: [SimulatedRider]
    /// By user id.
    let drivers: [Int: SimulatedDriver]
    let riders: [Int: SimulatedRider]
    private let running = Atomic<Bool>(true)

    init(settings: LoadTestSettings, city: CityModel, measurements: Measurements, drivers: [SimulatedDriver], riders: [SimulatedRider]) {
        self.settings = settings
        self.city = city
        self.measurements = measurements
        driverList = drivers
        riderList = riders
        self.drivers = Dictionary(uniqueKeysWithValues: drivers.map { ($0.id, $0) })
        self.riders = Dictionary(uniqueKeysWithValues: riders.map { ($0.id, $0) })
    }

    /// False once the run ends: riders request no more trips, and closes are expected.
    var isRunning: Bool { running.load(ordering: .acquiring) }

    func stop() { running.store(false, ordering: .releasing) }
}
