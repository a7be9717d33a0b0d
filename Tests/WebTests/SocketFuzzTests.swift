import BenchSupport
import Foundation
import HubLauncher
import Testing
import TestSupport

/// Thousands of random and mutated frames over many sockets at once against a hub process:
/// every frame that must be refused gets its documented error frame or close code, the hub keeps
/// serving, nothing it should protect changes, and its memory comes back down. Seeded: the seed
/// is printed, and `TAXI_HUB_FUZZ_SEED` replays a run.
@Suite("WebSocket fuzzing", MachineLoad.shared, .timeLimit(.minutes(6)))
struct SocketFuzzTests {
    static let sockets = 24
    static let casesPerSocket = 120
    static let maxFrameSize = 128 * 1024
    /// The codes docs/protocol.md §2.3 lists.
    static let documentedCodes: Set<String> = [
        "bad_message", "unknown_type", "invalid", "forbidden", "not_found", "trip_taken", "invalid_transition",
        "rate_limited", "too_large",
    ]

    /// What a case must get back before the sentinel echo that follows it.
    enum Expectation {
        /// Exactly one error frame, with one of these codes.
        case error(Set<String>)
        /// This text echoed, and no error.
        case echo(String)
        /// The socket closed with this code.
        case close(Int)
        /// Anything, but every error frame has a documented code.
        case anything
    }

    struct Case {
        let kind: String
        /// (opcode, payload, fin) in order.
        let frames: [(UInt8, [UInt8], Bool)]
        let expectation: Expectation
    }

    /// Who a socket is and what it may aim at.
    struct Target {
        let isDriver: Bool
        let userID: Int
        /// A trip of others that nobody here may change.
        let protectedTrip: String
    }

    static var templates: [String: [String: Any]] { [
        "create.trip": ["pick_up_address": "1 Main St", "drop_off_address": "2 Side St", "pick_up_location": ["lat": 40.7, "lng": -74.0]],
        "update.trip": ["id": "8d5c0b55-7a43-4a43-9a0e-7c2b1a3b6f10", "status": "STARTED", "driver": 1],
        "cancel.trip": ["id": "8d5c0b55-7a43-4a43-9a0e-7c2b1a3b6f10"],
        "update.location": ["lat": 40.7, "lng": -74.0, "heading": 90.0, "speed": 5.0, "accuracy": 3.0],
        "resume": ["trips": ["8d5c0b55-7a43-4a43-9a0e-7c2b1a3b6f10": 1]],
    ] }

    static func text(_ string: String) -> [(UInt8, [UInt8], Bool)] { [(0x1, Array(string.utf8), true)] }

    static func message(_ type: String, _ data: Any) -> String {
        jsonText(["type": type, "data": data])
    }

    /// The JSON kind of a value: a number is a number, whole or not.
    static func kind(_ value: Any) -> String {
        switch value {
        case is String: "string"
        case is Bool: "bool"
        case is Int, is Double: "number"
        case is [Any]: "array"
        default: "object"
        }
    }

    /// A JSON value of another kind than `value`'s. No null: a null field counts as absent
    /// (docs/protocol.md §1.2), which is no wrong type.
    static func wrongValue(for value: Any, _ rng: inout SplitMix64) -> Any {
        let choices: [Any] = ["text", 12, true, [1, 2], ["nested": ["x": 1]], String(repeating: "9", count: 400)]
        while true {
            let candidate = choices[Int(rng.next() % UInt64(choices.count))]
            if kind(candidate) != kind(value) { return candidate }
        }
    }

    static func generate(_ rng: inout SplitMix64, _ target: Target, number: Int) -> Case {
        func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }
        switch rng.next() % 15 {
        case 0:
            var bytes = (0..<Int(rng.next() % 64 + 1)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            bytes.insert(pick([0xFF, 0xC0, 0xED, 0xF8]), at: Int(rng.next() % UInt64(bytes.count + 1)))
            bytes.append(0x80)
            return Case(kind: "invalid UTF-8", frames: [(0x1, bytes, true)], expectation: .error(["bad_message"]))
        case 1:
            // (A trailing comma before a closing bracket is accepted, as JSONDecoder does: §2.3.)
            let junk = pick(["{", "}", "[1,", "{\"type\":", "nul", "\"\\u12\"", "{\"type\":\"echo.message\",,}", "1e", "--"])
            return Case(kind: "broken JSON", frames: text(junk), expectation: .error(["bad_message"]))
        case 2:
            let depth = 10_000
            let nested =
                rng.next() % 2 == 0
                ? String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
                : #"{"type":"echo.message","data":"# + String(repeating: #"{"a":"#, count: depth) + "1"
                    + String(repeating: "}", count: depth) + "}"
            return Case(kind: "10,000 levels of nesting", frames: text(nested), expectation: .error(["bad_message"]))
        case 3:
            let number = pick(["1e999", "-1e999", "123456789012345678901234567890123456789", "1" + String(repeating: "0", count: 5000)])
            let field = pick(["lat", "lng", "speed", "heading", "timestamp"])
            // A repeated key: the first one counts (docs/protocol.md §2.3), so the huge number does.
            let frame = #"{"type":"update.location","data":{""# + field + #"":"# + number + #","lat":40.7,"lng":-74.0}}"#
            return Case(kind: "huge number", frames: text(frame), expectation: .error(["invalid", "bad_message", "forbidden"]))
        case 4:
            let size = pick([600, 5000, 100_000])
            let frame = message("create.trip", ["pick_up_address": String(repeating: "ä", count: size / 2), "drop_off_address": "B"])
            let codes: Set<String> = target.isDriver ? ["forbidden"] : ["invalid"]
            return Case(kind: "huge string", frames: text(frame), expectation: .error(codes.union(["too_large"])))
        case 5:
            let type = pick(Array(templates.keys).sorted())
            var data = templates[type]!
            let field = pick(Array(data.keys).sorted())
            data[field] = wrongValue(for: data[field]!, &rng)
            return Case(kind: "wrong type: \(type).\(field)", frames: text(message(type, data)), expectation: .error(["bad_message", "invalid"]))
        case 6:
            return Case(kind: "binary frame", frames: [(0x2, Array("{\"type\":\"echo.message\"}".utf8), true)], expectation: .error(["bad_message"]))
        case 7:
            let echo = message("echo.message", "fragments-\(number)")
            let bytes = Array(echo.utf8)
            let cut1 = Int(rng.next() % UInt64(bytes.count - 2)) + 1
            let cut2 = cut1 + Int(rng.next() % UInt64(bytes.count - cut1 - 1)) + 1
            return Case(
                kind: "fragmented echo",
                frames: [(0x1, Array(bytes[..<cut1]), false), (0x0, Array(bytes[cut1..<cut2]), false), (0x0, Array(bytes[cut2...]), true)],
                expectation: .echo(echo)
            )
        case 8:
            return Case(
                kind: "fragmented junk", frames: [(0x1, Array("{\"type\":".utf8), false), (0x0, [0xFF, 0xFE], true)],
                expectation: .error(["bad_message"])
            )
        case 9:
            let frame = message("echo.message", String(repeating: "x", count: maxFrameSize + 10))
            return Case(kind: "over maxFrameSize", frames: text(frame), expectation: .error(["too_large"]))
        case 10:
            let type = pick(["launch.rocket", "ECHO.MESSAGE", "", "create.trip ", "💥", String(repeating: "t", count: 300)])
            return Case(kind: "unknown type", frames: text(message(type, [:])), expectation: .error(["unknown_type"]))
        case 11:
            let protected = target.protectedTrip
            let options: [(String, Set<String>)] = [
                (message("update.trip", ["id": protected, "status": pick(["STARTED", "IN_PROGRESS", "COMPLETED", "REQUESTED", "CANCELED"])]),
                 target.isDriver ? ["trip_taken"] : ["forbidden"]),
                (message("cancel.trip", ["id": protected]), ["forbidden"]),
                (message("resume", ["trips": [protected: 0]]), ["forbidden"]),
                (message("update.trip", ["id": protected, "status": "IN_PROGRESS", "driver": target.userID + 1000]), ["forbidden"]),
                (message("update.trip", ["id": UUID().uuidString.lowercased(), "status": "STARTED"]), target.isDriver ? ["not_found"] : ["forbidden", "not_found"]),
                (message(target.isDriver ? "create.trip" : "update.location", target.isDriver ? templates["create.trip"]! : templates["update.location"]!), ["forbidden"]),
            ]
            let (frame, codes) = pick(options)
            return Case(kind: "valid message, wrong state", frames: text(frame), expectation: .error(codes))
        case 12 where rng.next() % 8 == 0:
            // Rarely: one frame over the transport limit, which closes the socket with 1009.
            return Case(kind: "over the transport limit", frames: [(0x1, Array(repeating: 0x61, count: (1 << 20) + 1), true)], expectation: .close(1009))
        default:
            return mutated(&rng)
        }
    }

    /// A valid message with one to three bytes changed, dropped or added: it may still be valid.
    static func mutated(_ rng: inout SplitMix64) -> Case {
        let types = Array(templates.keys).sorted() + ["echo.message"]
        let type = types[Int(rng.next() % UInt64(types.count))]
        var bytes = Array(message(type, templates[type].map { $0 as Any } ?? "hello").utf8)
        let inserts = Array("{}[]\",:0e-\\".utf8)
        for _ in 0...(rng.next() % 3) {
            let at = Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 3 {
            case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next() % 95 + 32)
            case 1: bytes.remove(at: at)
            default: bytes.insert(inserts[Int(rng.next() % UInt64(inserts.count))], at: at)
            }
        }
        return Case(kind: "mutated \(type)", frames: [(0x1, bytes, true)], expectation: .anything)
    }

    static func resident(_ hub: LiveHub) async throws -> Double {
        let text = String(buffer: try await hub.request("/metrics").body)
        return try #require(
            text.split(separator: "\n").first { $0.hasPrefix("process_resident_memory_bytes ") }
                .flatMap { Double($0.split(separator: " ")[1]) }
        )
    }

    static func metric(_ hub: LiveHub, _ name: String) async throws -> String? {
        String(buffer: try await hub.request("/metrics").body).split(separator: "\n")
            .first { $0.hasPrefix(name + " ") }.map { String($0.split(separator: " ")[1]) }
    }

    /// Runs one socket's cases; returns the failures it saw (empty when all went as expected).
    static func fuzz(_ hub: LiveHub, _ account: LiveHub.Account, _ target: Target, seed: UInt64) async throws -> [String] {
        var rng = SplitMix64(seed: seed)
        var socket = try await TestSocket.connect(port: hub.port, token: account.access, rawFrames: true)
        var failures: [String] = []
        for number in 0..<casesPerSocket {
            let fuzzCase = generate(&rng, target, number: number)
            for (opcode, payload, fin) in fuzzCase.frames { socket.sendFrame(opcode: opcode, payload, fin: fin) }
            if case .close(let code) = fuzzCase.expectation {
                var closeCode: Int?
                while let frame = try await socket.nextFrame(), closeCode == nil { closeCode = frame.closeCode }
                if closeCode != code { failures.append("case \(number) (\(fuzzCase.kind)): closed with \(closeCode.map(String.init) ?? "nothing"), not \(code)") }
                await socket.close()
                socket = try await TestSocket.connect(port: hub.port, token: account.access, rawFrames: true)
                continue
            }
            let sentinel = message("echo.message", "sentinel-\(number)")
            socket.sendFrame(opcode: 0x1, Array(sentinel.utf8))
            var errors: [String] = []
            var texts: [String] = []
            while true {
                guard let frame = try await socket.nextFrame() else {
                    failures.append("case \(number) (\(fuzzCase.kind)): no sentinel, socket \(socket.isClosed ? "closed" : "silent")")
                    return failures
                }
                guard let text = frame.text else { continue }
                if text == sentinel { break }
                texts.append(text)
                if let reply = try? parseJSONObject(text), reply["type"] as? String == "error" {
                    errors.append(((reply["data"] as? [String: Any])?["code"] as? String) ?? "?")
                }
            }
            let undocumented = errors.filter { !documentedCodes.contains($0) }
            if !undocumented.isEmpty { failures.append("case \(number) (\(fuzzCase.kind)): undocumented codes \(undocumented)") }
            switch fuzzCase.expectation {
            case .error(let codes) where errors.count != 1 || !codes.contains(errors[0]):
                failures.append("case \(number) (\(fuzzCase.kind)): errors \(errors), wanted one of \(codes.sorted())")
            case .echo(let echo) where !texts.contains(echo) || !errors.isEmpty:
                failures.append("case \(number) (\(fuzzCase.kind)): no echo (errors \(errors))")
            default:
                break
            }
        }
        await socket.close()
        return failures
    }

    @Test("thousands of random and mutated frames on many sockets at once change nothing and get their documented answers")
    func fuzzing() async throws {
        let seed = ProcessInfo.processInfo.environment["TAXI_HUB_FUZZ_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64(UInt32.max))
        print("WebSocket fuzzing: seed \(seed) (replay with TAXI_HUB_FUZZ_SEED=\(seed))")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("taxihub-fuzz-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let process = try await TestHub.process(
            directory: directory,
            arguments: ["--max-frame-size", String(Self.maxFrameSize), "--location-rate-limit", "1000", "--message-rate-limit", "100000"]
        )
        try await process.withHub { hub in
            let rider = try await hub.account("protected-rider")
            let driver = try await hub.account("protected-driver", group: "driver")
            let ride = try await hub.connect(rider)
            let tripID = try #require(try await hub.requestTrip(rider, on: ride)["id"] as? String)
            let driving = try await hub.connect(driver)
            driving.send(["type": "update.trip", "data": ["id": tripID, "status": "STARTED", "driver": driver.id]])
            _ = try await driving.receiveJSON()
            await ride.close()
            await driving.close()
            let before = try parseJSONObject(String(buffer: try await hub.request("/api/trip/\(tripID)/", token: rider.access).body))
            var accounts: [LiveHub.Account] = []
            for index in 0..<Self.sockets {
                accounts.append(try await hub.account("fuzz-\(index)", group: index % 2 == 0 ? "rider" : "driver"))
            }
            let users = try await Self.metric(hub, "taxihub_users")
            let memoryBefore = try await Self.resident(hub)

            let failures = try await withThrowingTaskGroup(of: [String].self) { group in
                for (index, account) in accounts.enumerated() {
                    let target = Target(isDriver: index % 2 == 1, userID: account.id, protectedTrip: tripID)
                    group.addTask { try await Self.fuzz(hub, account, target, seed: seed &+ UInt64(index)) }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(failures.isEmpty, "seed \(seed): \(failures.count) failures:\n\(failures.prefix(20).joined(separator: "\n"))")

            // The hub still serves a normal ride, the protected trip and the accounts are as they were.
            let after = try parseJSONObject(String(buffer: try await hub.request("/api/trip/\(tripID)/", token: rider.access).body))
            #expect(NSDictionary(dictionary: after).isEqual(to: before), "seed \(seed): the protected trip changed")
            #expect(try await Self.metric(hub, "taxihub_users") == users, "seed \(seed): accounts changed")
            let newRider = try await hub.account("after-rider")
            let newDriver = try await hub.account("after-driver", group: "driver")
            let riderSocket = try await hub.connect(newRider)
            let trip = try #require(try await hub.requestTrip(newRider, on: riderSocket)["id"] as? String)
            let driverSocket = try await hub.connect(newDriver)
            driverSocket.send(["type": "update.trip", "data": ["id": trip, "status": "COMPLETED", "driver": newDriver.id]])
            var riderSaw: [String: Any] = [:]
            while riderSaw["status"] as? String != "COMPLETED" {
                riderSaw = try #require(try await riderSocket.receiveJSON()["data"] as? [String: Any])
            }
            await riderSocket.close()
            await driverSocket.close()

            // Memory comes back near where it was once the junk's sockets are gone.
            try await Task.sleep(for: .seconds(2))
            let memoryAfter = try await Self.resident(hub)
            print("WebSocket fuzzing: resident memory \(Int(memoryBefore) >> 20) MiB before, \(Int(memoryAfter) >> 20) MiB after")
            #expect(memoryAfter < memoryBefore + 64 * 1024 * 1024, "seed \(seed): memory grew from \(memoryBefore) to \(memoryAfter) bytes")
        }
        try await process.stop()
    }
}
