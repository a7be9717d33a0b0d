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
                .product(name: "PostgresClient", package: "taxi-hub"),
            ],
            path: "Sources/BenchmarkWorkloads",
            swiftSettings: strict
        ),
        benchmark("Nearby", using: ["BenchSupport", "Hub"]),
        benchmark("FixRecording", using: ["BenchSupport", "Hub"]),
        benchmark("FrameParsing", using: ["Web"], [.product(name: "NIOCore", package: "swift-nio")]),
        benchmark("SnapshotEncoding", using: ["Hub", "Persistence"]),
        benchmark("SnapshotFlush", using: ["Hub", "Persistence"]),
        // The hub and its WebSocket client are the root package's own (HubLauncher's TestHub,
        // SocketClient), as in the tests and `taxi-hub loadtest`.
        benchmark(
            "SnapshotLatency", using: ["BenchSupport", "Hub", "HubLauncher", "Persistence", "SocketClient", "Web"],
            [
                .product(name: "NIOCore", package: "swift-nio"),
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
