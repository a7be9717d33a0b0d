import Foundation
import HubLauncher
import Hummingbird
import Logging
import Synchronization
import Testing
import Web
import TestSupport

/// Every role against every authenticated route and every socket message, on a live hub: the
/// answers observed must be the table in docs/protocol.md ("Who may do what"), which this test
/// checks (and rewrites with `TAXI_HUB_WRITE_MATRIX=1` after a deliberate change).
@Suite("Authorization matrix", MachineLoad.shared, .timeLimit(.minutes(4)))
struct AuthorizationMatrixTests {
    enum Role: String, CaseIterable {
        case anonymous
        case rider = "the trip's rider"
        case otherRider = "another rider"
        case driver = "the trip's driver"
        case otherDriver = "another driver"
        case `operator` = "operator"
    }

    /// A hub with one user per role, a `STARTED` trip of the rider driven by the driver, and a
    /// `REQUESTED` trip of the rider.
    struct World {
        let hub: LiveHub
        let accounts: [Role: LiveHub.Account]
        let startedTrip: String
        let requestedTrip: String

        static func make(_ hub: LiveHub) async throws -> World {
            var accounts: [Role: LiveHub.Account] = [:]
            accounts[.rider] = try await hub.account("rider")
            accounts[.otherRider] = try await hub.account("other-rider")
            accounts[.driver] = try await hub.account("driver", group: "driver")
            accounts[.otherDriver] = try await hub.account("other-driver", group: "driver")
            accounts[.operator] = try await OperatorTests.makeOperator(hub, "operator")
            let riderSocket = try await hub.connect(accounts[.rider]!)
            let started = try #require(try await hub.requestTrip(accounts[.rider]!, on: riderSocket)["id"] as? String)
            let requested = try #require(try await hub.requestTrip(accounts[.rider]!, on: riderSocket)["id"] as? String)
            let driverSocket = try await hub.connect(accounts[.driver]!)
            driverSocket.send(["type": "update.trip", "data": ["id": started, "status": "STARTED", "driver": accounts[.driver]!.id]])
            #expect(try await driverSocket.receiveJSON()["type"] as? String == "echo.message")
            await driverSocket.close()
            await riderSocket.close()
            return World(hub: hub, accounts: accounts, startedTrip: started, requestedTrip: requested)
        }
    }

    /// One row of the table: what is asked, and how to ask it as a role.
    struct Row: Sendable {
        let request: String
        let ask: @Sendable (World, Role) async throws -> String
    }

    static func http(_ world: World, _ role: Role, _ path: String, method: HTTPRequest.Method = .get, json: Any? = nil)
        async throws -> LiveHub.HTTPResult
    {
        try await world.hub.request(path, method: method, token: world.accounts[role]?.access, json: json)
    }

    /// The answer to one socket message: `ok` for a reply that is not an error, `ok, no reply`
    /// when nothing comes back, else the error's code; `no socket` for the anonymous.
    static func message(_ world: World, _ role: Role, _ message: [String: Any]) async throws -> String {
        guard let account = world.accounts[role] else { return "no socket" }
        let socket = try await world.hub.connect(account)
        defer { Task { await socket.close() } }
        socket.send(message)
        while let frame = try? await socket.receiveJSON(timeout: .milliseconds(600)) {
            guard let type = frame["type"] as? String, !type.hasPrefix("operator.") else { continue }
            return type == "error" ? ((frame["data"] as? [String: Any])?["code"] as? String ?? "error") : "ok"
        }
        return "ok, no reply"
    }

    static let rows: [Row] = [
        Row(request: "`GET /api/trip/`") { world, role in
            let response = try await http(world, role, "/api/trip/")
            guard response.status == .ok else { return String(response.status.code) }
            let ids = try parseJSONArray(String(buffer: response.body)).compactMap { $0["id"] as? String }
            return ids.contains(world.startedTrip) ? "200, trip listed" : "200, not listed"
        },
        Row(request: "`GET /api/trip/<id>/`") { world, role in
            String(try await http(world, role, "/api/trip/\(world.startedTrip)/").status.code)
        },
        Row(request: "`GET /api/trip/<id>/track/`") { world, role in
            String(try await http(world, role, "/api/trip/\(world.startedTrip)/track/").status.code)
        },
        Row(request: "`POST /api/token/refresh/` (own refresh token)") { world, role in
            let body: [String: Any] = world.accounts[role].map { ["refresh": $0.refresh] } ?? [:]
            return String(try await http(world, role, "/api/token/refresh/", method: .post, json: body).status.code)
        },
        Row(request: "`POST /api/operators/`") { world, role in
            let body = ["username": "new-operator", "password": LiveHub.password]
            return String(try await http(world, role, "/api/operators/", method: .post, json: body).status.code)
        },
        Row(request: "`GET /api/demand/`") { world, role in
            String(try await http(world, role, "/api/demand/").status.code)
        },
        Row(request: "WebSocket `/taxi/?token=`") { world, role in
            guard let account = world.accounts[role] else {
                return (try? await TestSocket.connect(port: world.hub.port, token: nil)) == nil ? "401" : "open"
            }
            let socket = try await world.hub.connect(account)
            await socket.close()
            return "open"
        },
        Row(request: "`echo.message`") { world, role in
            try await message(world, role, ["type": "echo.message", "data": ["hello": 1]])
        },
        Row(request: "`create.trip`") { world, role in
            try await message(world, role, ["type": "create.trip", "data": ["pick_up_address": "A", "drop_off_address": "B"]])
        },
        Row(request: "`update.trip` to `STARTED` (accept a requested trip)") { world, role in
            try await message(world, role, ["type": "update.trip", "data": ["id": world.requestedTrip, "status": "STARTED"]])
        },
        Row(request: "`update.trip` to `IN_PROGRESS` (a started trip)") { world, role in
            try await message(world, role, ["type": "update.trip", "data": ["id": world.startedTrip, "status": "IN_PROGRESS"]])
        },
        Row(request: "`cancel.trip` (a started trip)") { world, role in
            try await message(world, role, ["type": "cancel.trip", "data": ["id": world.startedTrip]])
        },
        Row(request: "`update.location`") { world, role in
            try await message(world, role, ["type": "update.location", "data": ["lat": 40.7, "lng": -74.0]])
        },
        Row(request: "`resume` (a started trip)") { world, role in
            try await message(world, role, ["type": "resume", "data": ["trips": [world.startedTrip: 0]]])
        },
        Row(request: "`decline.trip` (the requested trip)") { world, role in
            try await message(world, role, ["type": "decline.trip", "data": ["id": world.requestedTrip]])
        },
        Row(request: "`update.availability`") { world, role in
            try await message(world, role, ["type": "update.availability", "data": ["online": false]])
        },
    ]

    /// The table as it stands in docs/protocol.md.
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../docs/protocol.md").standardizedFileURL
    static let begin = "<!-- authorization matrix: checked by Tests/WebTests/AuthorizationMatrixTests.swift -->"
    static let end = "<!-- end of authorization matrix -->"

    static func table(_ cells: [[String]]) -> String {
        var lines = ["| request | " + Role.allCases.map(\.rawValue).joined(separator: " | ") + " |"]
        lines.append("|---" + String(repeating: "|---", count: Role.allCases.count) + "|")
        for (row, answers) in zip(rows, cells) {
            lines.append("| \(row.request) | " + answers.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    @Test("every role gets the documented answer from every authenticated route and socket message")
    func matrix() async throws {
        var cells: [[String]] = []
        for row in Self.rows {
            var answers: [String] = []
            for role in Role.allCases {
                // A fresh hub per cell: an answer that changes a trip cannot change the next one.
                let answer = Mutex<String>("")
                try await LiveHub.run { hub in
                    let world = try await World.make(hub)
                    let observed = try await row.ask(world, role)
                    answer.withLock { $0 = observed }
                }
                answers.append(answer.withLock { $0 })
            }
            cells.append(answers)
        }
        let observed = Self.table(cells)
        let text = try String(contentsOf: Self.document, encoding: .utf8)
        let start = try #require(text.range(of: Self.begin), "docs/protocol.md has no authorization matrix")
        let stop = try #require(text.range(of: Self.end, range: start.upperBound..<text.endIndex))
        let documented = text[start.upperBound..<stop.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
        if ProcessInfo.processInfo.environment["TAXI_HUB_WRITE_MATRIX"] == "1" {
            try text.replacingCharacters(in: start.upperBound..<stop.lowerBound, with: "\n" + observed + "\n")
                .write(to: Self.document, atomically: true, encoding: .utf8)
        }
        #expect(documented == observed, "the hub's answers differ from docs/protocol.md:\n\(observed)")
    }
}
