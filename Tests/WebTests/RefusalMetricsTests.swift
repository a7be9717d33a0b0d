import Foundation
import HubLauncher
import Hummingbird
import Testing

@testable import Web
import TestSupport

/// Every refusal is counted in /metrics by kind: HTTP answers by status (routes, unknown paths,
/// refused upgrades) and sockets the hub closed by reason.
@Suite("Refusal metrics", MachineLoad.shared, .timeLimit(.minutes(2)))
struct RefusalMetricsTests {
    static func count(_ metrics: String, _ series: String) -> Int {
        for line in metrics.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Int(Double(line.dropFirst(series.count + 1)) ?? -1)
        }
        return 0
    }

    @Test("refused HTTP requests and upgrades are counted by status")
    func httpRefusalsByStatus() async throws {
        try await LiveHub.run { hub in
            let rider = try await hub.account("counted@example.com")
            #expect(try await hub.request("/no/such/path").status == .notFound)
            #expect(try await hub.request("/api/trip/\(UUID().uuidString)/", token: rider.access).status == .notFound)
            #expect(try await hub.request("/api/trip/").status == .unauthorized)
            #expect(try await hub.request("/api/trip/", token: "not.a.token").status == .unauthorized)
            #expect(try await hub.request("/api/log_in/", method: .post, json: ["username": ""]).status == .badRequest)
            // The router answers a method it has no route for with 404, like an unknown path.
            #expect(try await hub.request("/api/trip/", method: .delete, token: rider.access).status == .notFound)
            await #expect(throws: (any Error).self) { _ = try await TestSocket.connect(port: hub.port, token: "bad") }
            let metrics = String(buffer: try await hub.request("/metrics").body)
            #expect(Self.count(metrics, #"taxihub_http_refusals_total{status="404"}"#) == 3)
            // Two plain requests and the refused upgrade.
            #expect(Self.count(metrics, #"taxihub_http_refusals_total{status="401"}"#) == 3)
            #expect(Self.count(metrics, #"taxihub_http_refusals_total{status="400"}"#) == 1)
            #expect(Self.count(metrics, #"taxihub_http_refusals_total{status="500"}"#) == 0)
        }
    }

    @Test("a socket closed for a message over the transport limit is counted by reason, and error frames by code")
    func socketClosesByReason() async throws {
        try await LiveHub.run { $0.maxFrameSize = 4096 } _: { hub in
            let rider = try await hub.account("big@example.com")
            let socket = try await hub.connect(rider)
            socket.send("{not json")
            #expect(try await socket.receiveJSON()["type"] as? String == "error")
            // Over maxFrameSize gets a too_large error frame; over the transport limit, 1009.
            socket.send(String(repeating: "x", count: 8 * 1024))
            #expect(try await socket.receiveJSON()["data"].flatMap { ($0 as? [String: Any])?["code"] as? String } == "too_large")
            socket.send(String(repeating: "x", count: ClientSession.transportLimit(forMessageSize: 4096) + 1))
            let close = await socket.closedByServer()
            #expect(close?.closeCode == .messageTooLarge)
            let metrics = String(buffer: try await hub.request("/metrics").body)
            #expect(Self.count(metrics, #"taxihub_socket_closes_total{reason="too_large"}"#) == 1)
            #expect(Self.count(metrics, #"taxihub_socket_closes_total{reason="protocol_error"}"#) == 0)
            #expect(Self.count(metrics, #"taxihub_errors_total{code="bad_message"}"#) == 1)
            #expect(Self.count(metrics, #"taxihub_errors_total{code="too_large"}"#) == 1)
        }
    }
}
