import Foundation
import Hub

/// Where a benchmark spreads drivers and pick-ups, uniformly.
public enum DriverArea: String, CaseIterable, Sendable {
    /// A 30 km × 30 km box centred on Berlin's Alexanderplatz.
    case city
    /// The whole earth, uniformly over its surface (so nearly every search finds nobody nearby).
    case world

    private static let cityCentre = GeoPoint(lat: 52.520_008, lng: 13.404_954)
    private static let cityHalfSide = 15_000.0

    public func randomPoint(using random: inout some RandomNumberGenerator) -> GeoPoint {
        switch self {
        case .city:
            let metresPerDegree = GeoPoint.earthRadius * .pi / 180
            let latSpan = Self.cityHalfSide / metresPerDegree
            let lngSpan = latSpan / cos(Self.cityCentre.lat * .pi / 180)
            return GeoPoint(
                lat: Self.cityCentre.lat + Double.random(in: -latSpan...latSpan, using: &random),
                lng: Self.cityCentre.lng + Double.random(in: -lngSpan...lngSpan, using: &random)
            )
        case .world:
            return GeoPoint(
                lat: asin(Double.random(in: -1...1, using: &random)) * 180 / .pi,
                lng: Double.random(in: -180..<180, using: &random)
            )
        }
    }
}
