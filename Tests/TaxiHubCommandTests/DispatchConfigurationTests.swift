import Foundation
import Hub
import Testing

@testable import TaxiHubCommand
import TestSupport
@testable import Web

/// The dispatch settings (docs/configuration.md): each reaches the hub's settings, and a bad
/// value stops the start with a message naming it.
@Suite("Configuration: dispatch", MachineLoad.shared)
struct DispatchConfigurationTests {
    static func resolve(_ arguments: [String], environment: [String: String] = [:]) async throws -> HubConfiguration {
        try await HubOptions.parse(arguments).configuration(environment: environment)
    }

    @Test("flags and variables reach the offer rounds, the ETA model and the pick-up rules")
    func reachTheHub() async throws {
        let configuration = try await Self.resolve(
            [
                "--dispatch-radius", "500", "--dispatch-radius-step", "250", "--dispatch-max-radius", "2000", "--dispatch-drivers", "3",
                "--offer-timeout", "20", "--dispatch-timeout", "90", "--stale-position-after", "45", "--arrival-radius", "80",
                "--pickup-radius", "0",
            ],
            environment: ["TAXI_HUB_CITY_SPEED": "30", "TAXI_HUB_DETOUR_FACTOR": "1.5"]
        )
        let settings = configuration.hubSettings
        #expect(settings.dispatch == DispatchPolicy(initialRadius: 500, maxRadius: 2_000, driverCount: 3))
        #expect(
            settings.offers
                == OfferPolicy(radiusStep: 250, offerTimeout: .seconds(20), dispatchTimeout: .seconds(90), stalePositionAfter: .seconds(45))
        )
        #expect(settings.eta == ETAModel(citySpeed: 30, detourFactor: 1.5))
        #expect(settings.pickUp == PickUpPolicy(arrivalRadius: 80, pickUpRadius: 0))
        // The defaults, as documented.
        let defaults = try await Self.resolve([]).hubSettings
        #expect(defaults.offers == OfferPolicy())
        #expect(defaults.eta == ETAModel() && defaults.pickUp == PickUpPolicy())
    }

    @Test(
        "bad values are refused at start, naming the setting",
        arguments: [
            (["--dispatch-radius-step", "-1"], "dispatchRadiusStep"),
            (["--dispatch-radius-step", "nan"], "dispatchRadiusStep"),
            (["--offer-timeout", "0"], "offerTimeout"),
            (["--offer-timeout", "601"], "offerTimeout"),
            (["--dispatch-timeout", "0.5"], "dispatchTimeout"),
            (["--dispatch-timeout", "10", "--offer-timeout", "15"], "dispatchTimeout"),
            (["--stale-position-after", "0"], "stalePositionAfter"),
            (["--arrival-radius", "0"], "arrivalRadius"),
            (["--pickup-radius", "-5"], "pickupRadius"),
            (["--pickup-radius", "far"], "pickupRadius"),
            (["--city-speed", "0"], "citySpeed"),
            (["--city-speed", "500"], "citySpeed"),
            (["--detour-factor", "0.9"], "detourFactor"),
        ]
    )
    func refusesBadValues(arguments: [String], setting: String) async throws {
        let error = await #expect(throws: ConfigurationError.self) { try await Self.resolve(arguments) }
        #expect(error?.description.contains(setting) == true, "\(error.map { "\($0)" } ?? "")")
    }
}
