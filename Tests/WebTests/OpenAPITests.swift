import Foundation
import HubLauncher
import Logging
import Testing
import Web
import TestSupport

/// docs/openapi.yaml against the routes the hub really registers (`HubServer.routes`), both
/// ways, with and without `benchRoutes`; and its templates for the browser client's files
/// against the files in Sources/Web/Public. scripts/contract-test checks the answers themselves.
@Suite("OpenAPI document", MachineLoad.shared, .timeLimit(.minutes(2)))
struct OpenAPITests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
    static let documentURL = repository.appendingPathComponent("docs/openapi.yaml")

    /// One operation of the document: `GET /api/trip/{trip_id}/` plus the document's markers.
    struct Operation: Hashable {
        let method: String
        let path: String
        /// `x-taxihub-served-by: middleware`: answered by a middleware, not a router route.
        var middleware = false
        /// `x-taxihub-bench-only: true`: registered only with `benchRoutes`.
        var benchOnly = false
    }

    /// Reads the operations under `paths:` with a reader made for this document's layout, not
    /// a YAML parser (the package has none): a path is a key at two spaces of indentation inside
    /// the top-level `paths:` block, a method a key at four under it, and the markers keys at six
    /// under a method. Anything else in the file is skipped. A line of `paths:` this reader
    /// cannot place (a deeper key right under a path, a flow-style mapping) fails the read, so
    /// a document laid out differently fails the test rather than passing with fewer routes.
    static func operations(inDocument text: String) throws -> [Operation] {
        let methods: Set = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
        var operations: [Operation] = []
        var inPaths = false
        var path: String?
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            let content = line.drop { $0 == " " }
            if content.isEmpty || content.hasPrefix("#") { continue }
            let indent = line.count - content.count
            if indent == 0 {
                inPaths = line.hasPrefix("paths:")
                continue
            }
            guard inPaths else { continue }
            switch indent {
            case 2:
                guard content.hasSuffix(":") else { throw ReadError(line: number + 1, text: line) }
                var key = String(content.dropLast())
                if key.count >= 2, key.first == "\"" || key.first == "'", key.last == key.first {
                    key = String(key.dropFirst().dropLast())
                }
                guard key.hasPrefix("/") else { throw ReadError(line: number + 1, text: line) }
                path = key
            case 4:
                guard let path, content.hasSuffix(":") else { throw ReadError(line: number + 1, text: line) }
                let key = String(content.dropLast())
                if methods.contains(key) {
                    operations.append(Operation(method: key.uppercased(), path: path))
                } else if !["summary", "description", "parameters", "servers"].contains(key) {
                    throw ReadError(line: number + 1, text: line)
                }
            case 6:
                guard !operations.isEmpty, operations[operations.count - 1].path == path else { continue }
                let pair = content.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if pair == ["x-taxihub-served-by", "middleware"] { operations[operations.count - 1].middleware = true }
                if pair == ["x-taxihub-bench-only", "true"] { operations[operations.count - 1].benchOnly = true }
            default:
                continue
            }
        }
        return operations
    }

    struct ReadError: Error, CustomStringConvertible {
        let line: Int
        let text: String
        var description: String { "docs/openapi.yaml:\(line): the test's reader cannot place this line under paths: \(text)" }
    }

    /// `METHOD /path/{parameter}` with Hummingbird's `:parameter` spelled OpenAPI's way and the
    /// trailing slash dropped (the router ignores it; the document keeps the hub's real paths).
    static func normalised(_ method: String, _ path: String) -> String {
        let components = path.split(separator: "/", omittingEmptySubsequences: true).map { component in
            component.hasPrefix(":") ? "{\(component.dropFirst())}" : String(component)
        }
        return "\(method.uppercased()) /\(components.joined(separator: "/"))"
    }

    /// The routes a hub built with `benchRoutes` on or off registers.
    static func registeredRoutes(benchRoutes: Bool) async throws -> Set<String> {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-openapi-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = LiveHub.configuration(in: directory)
        configuration.benchRoutes = benchRoutes
        var logger = Logger(label: "taxi-hub-openapi-test")
        logger.logLevel = .error
        let server = try await buildHub(configuration: configuration, logger: logger)
        try await server.shutdownEventLoops()
        return Set(
            try server.routes.map { route in
                let parts = route.split(separator: " ", maxSplits: 1).map(String.init)
                try #require(parts.count == 2, "unexpected route description \(route)")
                return normalised(parts[0], parts[1])
            }
        )
    }

    static func documentOperations() throws -> [Operation] {
        try operations(inDocument: String(contentsOf: documentURL, encoding: .utf8))
    }

    @Test("the reader finds every operation of the document, with its markers")
    func readerFindsOperations() throws {
        let sample = """
            openapi: 3.1.0
            components:
              schemas:
                Thing:
                  get:
                    type: object
            paths:
              /a/{id}/:
                get:
                  summary: x
                post:
                  x-taxihub-bench-only: true
              "/":
                get:
                  x-taxihub-served-by: middleware
                  responses:
                    "200":
                      x-taxihub-bench-only: true
            tags: []
            """
        let found = try Self.operations(inDocument: sample)
        #expect(
            found == [
                Operation(method: "GET", path: "/a/{id}/"), Operation(method: "POST", path: "/a/{id}/", benchOnly: true),
                Operation(method: "GET", path: "/", middleware: true),
            ]
        )
        #expect(throws: ReadError.self) { try Self.operations(inDocument: "paths:\n  /a/: {get: {}}\n") }
        #expect(throws: ReadError.self) { try Self.operations(inDocument: "paths:\n  /a/:\n    gets:\n") }

        let document = try Self.documentOperations()
        #expect(document.count >= 15, "read only \(document.count) operations from docs/openapi.yaml")
        #expect(Set(document).count == document.count, "an operation is listed twice")
    }

    @Test("every route the hub registers is documented, and every documented route is registered", arguments: [false, true])
    func routesMatchDocument(benchRoutes: Bool) async throws {
        let registered = try await Self.registeredRoutes(benchRoutes: benchRoutes)
        let documented = Set(
            try Self.documentOperations()
                .filter { !$0.middleware && (benchRoutes || !$0.benchOnly) }
                .map { Self.normalised($0.method, $0.path) }
        )
        #expect(!registered.isEmpty)
        #expect(registered.subtracting(documented).sorted() == [], "registered but not in docs/openapi.yaml")
        #expect(documented.subtracting(registered).sorted() == [], "in docs/openapi.yaml but not registered")
        // The bench-only marker is right: those routes exist with benchRoutes and only then.
        let benchOnly = Set(try Self.documentOperations().filter(\.benchOnly).map { Self.normalised($0.method, $0.path) })
        #expect(!benchOnly.isEmpty)
        #expect(benchRoutes ? benchOnly.isSubset(of: registered) : benchOnly.isDisjoint(with: registered))
    }

    @Test("paths served by middleware are the client's files and /media/photos/, and match the files")
    func middlewarePaths() throws {
        let operations = try Self.documentOperations().filter(\.middleware)
        #expect(operations.allSatisfy { $0.method == "GET" })
        let paths = Set(operations.map(\.path))
        #expect(paths.contains("/media/photos/{name}"))
        #expect(paths.contains("/"))
        // Nothing a router route serves is documented as middleware's.
        #expect(paths.allSatisfy { path in !["/api/", "/taxi/", "/healthz", "/readyz", "/metrics", "/bench/"].contains { path.hasPrefix($0) } })
        let fileTemplates = paths.filter { $0 != "/" && !$0.hasPrefix("/media/") }
        #expect(fileTemplates.allSatisfy { $0.hasSuffix("/{file}") }, "templates for the client's files end in /{file}")

        // Every file of the browser client is covered by exactly one template, and every
        // template covers at least one file: a folder added to the client must be documented.
        let publicFolder = Self.repository.appendingPathComponent("Sources/Web/Public")
        let enumerator = try #require(FileManager.default.enumerator(at: publicFolder, includingPropertiesForKeys: [.isRegularFileKey]))
        var files: [String] = []
        for case let url as URL in enumerator where (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true {
            files.append(String(url.standardized.path.dropFirst(publicFolder.standardized.path.count)))
        }
        #expect(files.contains("/index.html"))
        var used: Set<String> = []
        for file in files {
            let folder = String(file[..<file.lastIndex(of: "/")!]) + "/"
            let matching = fileTemplates.filter { $0 == folder + "{file}" }
            #expect(matching.count == 1, "\(file) of the browser client is not covered by a documented path")
            used.formUnion(matching)
        }
        #expect(used == fileTemplates, "documented templates with no file: \(fileTemplates.subtracting(used).sorted())")
    }
}
