// swift-tools-version:6.2
import PackageDescription

// TaxiHub's micro-benchmarks (package-benchmark): a package of their own that uses the root
// package by path, so `swift build` and `swift test` of TaxiHub never build them. Run them from
// this folder with `swift package benchmark` (README.md). Each benchmark target lives in
// Benchmarks/<Name>/, where the benchmark plugin looks for it.

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "taxi-hub-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "taxi-hub", path: ".."),
        // The malloc interposer (Swift 6.3+) gives the malloc counts without jemalloc; naming the
        // trait alone also leaves out the default RuntimeInterposer trait and its package.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        .target(
            name: "BenchmarkWorkloads",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BenchSupport", package: "taxi-hub"),
                .product(name: "Hub", package: "taxi-hub"),
                .product(name: "Persistence", package: "taxi-hub"),
            ],
            path: "Sources/BenchmarkWorkloads",
            swiftSettings: strict
        ),
        benchmark("Nearby", using: ["Hub"]),
        benchmark("FixRecording", using: ["Hub"]),
        benchmark("FrameParsing", using: ["Web"], [.product(name: "NIOCore", package: "swift-nio")]),
        benchmark("SnapshotEncoding", using: ["Hub", "Persistence"]),
        benchmark("SnapshotFlush", using: ["Hub", "Persistence"]),
        benchmark(
            "SnapshotLatency", using: ["BenchSupport", "Hub", "Persistence", "Web"],
            [
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
    ]
)

/// A benchmark target, Benchmarks/<name>/<name>.swift, using `products` of TaxiHub and `others`.
func benchmark(_ name: String, using products: [String], _ others: [Target.Dependency] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["BenchmarkWorkloads", .product(name: "Benchmark", package: "benchmark")]
            + products.map { .product(name: $0, package: "taxi-hub") } + others,
        path: "Benchmarks/\(name)",
        swiftSettings: strict,
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}
