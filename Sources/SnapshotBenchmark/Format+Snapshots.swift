import BenchSupport

extension Format {
    /// `no snapshots` or `100,000-trip snapshots`.
    static func snapshotLabel(_ trips: Int?) -> String {
        trips.map { "\(count($0))-trip snapshots" } ?? "no snapshots"
    }
}
