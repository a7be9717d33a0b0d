import Foundation
import NATSClient
import Synchronization
import TestSupport
import Testing

/// Values collected by handlers on the C client's threads, read by the test.
final class Collected<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])

    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var all: [Value] { values.withLock { $0 } }
    var count: Int { values.withLock { $0.count } }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns its last value.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

func connect(
    _ server: NATSTestServer, name: String = "test", retry: Bool = true,
    onStateChange: @escaping @Sendable (NATSConnectionState) -> Void = { _ in }
) throws -> NATSConnection {
    try NATSConnection.connect(urls: [server.url], name: name, retryOnFailedConnect: retry, onStateChange: onStateChange)
}

/// An 8-byte big-endian index followed by `extra` bytes derived from it.
func numberedPayload(_ index: Int, extra: Int = 40) -> [UInt8] {
    withUnsafeBytes(of: UInt64(index).bigEndian) { Array($0) } + (0..<extra).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) }
}

@Suite("NATS client against a real nats-server", MachineLoad.exclusive)
struct NATSClientTests {
    @Test("publish/subscribe delivers 10,000 messages in order with exact payloads")
    func orderedDelivery() async throws {
        try await NATSTestServer.with { server in
            let connection = try connect(server)
            defer { connection.close() }
            let received = Collected<NATSMessage>()
            let subscription = try connection.subscribe("orders.fix") { received.append($0) }
            #expect(subscription.subject == "orders.fix")
            try connection.flush(timeout: .seconds(5))
            for index in 0..<10_000 {
                try connection.publish("orders.fix", numberedPayload(index, extra: index % 200))
            }
            #expect(await eventually { received.count >= 10_000 })
            let messages = received.all
            #expect(messages.count == 10_000)
            for (index, message) in messages.enumerated() where message.payload != numberedPayload(index, extra: index % 200) {
                Issue.record("message \(index) arrived out of order or changed: \(message.payload.prefix(8))")
                break
            }
            #expect(messages.allSatisfy { $0.subject == "orders.fix" && $0.reply == nil })
            let statistics = connection.statistics
            #expect(statistics.outMessages >= 10_000)
            #expect(statistics.inMessages >= 10_000)
            #expect(statistics.inBytes >= statistics.inMessages * 8)
        }
    }

    @Test("two subscriptions each get their own messages; a wildcard one gets both")
    func separateSubscriptions() async throws {
        try await NATSTestServer.with { server in
            let connection = try connect(server)
            defer { connection.close() }
            let first = Collected<String>()
            let second = Collected<String>()
            let both = Collected<String>()
            _ = try connection.subscribe("trip.1") { first.append(String(decoding: $0.payload, as: UTF8.self)) }
            _ = try connection.subscribe("trip.2") { second.append(String(decoding: $0.payload, as: UTF8.self)) }
            _ = try connection.subscribe("trip.*") { both.append($0.subject) }
            try connection.flush(timeout: .seconds(5))
            for index in 0..<50 {
                try connection.publish("trip.1", Array("one-\(index)".utf8))
                try connection.publish("trip.2", Array("two-\(index)".utf8))
            }
            #expect(await eventually { first.count == 50 && second.count == 50 && both.count == 100 })
            #expect(first.all == (0..<50).map { "one-\($0)" })
            #expect(second.all == (0..<50).map { "two-\($0)" })
            #expect(both.all.filter { $0 == "trip.1" }.count == 50)
        }
    }

    @Test("a queue group delivers each message to exactly one member")
    func queueGroup() async throws {
        try await NATSTestServer.with { server in
            let connection = try connect(server)
            defer { connection.close() }
            let first = Collected<Int>()
            let second = Collected<Int>()
            _ = try connection.subscribe("work", queueGroup: "workers") { first.append(Int($0.payload[0])) }
            _ = try connection.subscribe("work", queueGroup: "workers") { second.append(Int($0.payload[0])) }
            try connection.flush(timeout: .seconds(5))
            for index in 0..<200 { try connection.publish("work", [UInt8(index)]) }
            #expect(await eventually { first.count + second.count == 200 })
            try await Task.sleep(for: .milliseconds(100))
            #expect(Set(first.all + second.all) == Set(0..<200))
            #expect(first.count + second.count == 200)
        }
    }

    @Test("unsubscribe stops delivery")
    func unsubscribeStops() async throws {
        try await NATSTestServer.with { server in
            let connection = try connect(server)
            defer { connection.close() }
            let stopped = Collected<Int>()
            let control = Collected<Int>()
            let subscription = try connection.subscribe("news") { stopped.append(Int($0.payload[0])) }
            _ = try connection.subscribe("news") { control.append(Int($0.payload[0])) }
            try connection.flush(timeout: .seconds(5))
            try connection.publish("news", [1])
            #expect(await eventually { stopped.count == 1 && control.count == 1 })
            subscription.unsubscribe()
            subscription.unsubscribe()  // idempotent
            for value in 2...6 { try connection.publish("news", [UInt8(value)]) }
            try connection.flush(timeout: .seconds(5))
            #expect(await eventually { control.count == 6 })
            try await Task.sleep(for: .milliseconds(200))
            #expect(stopped.all == [1])
            #expect(control.all == [1, 2, 3, 4, 5, 6])
        }
    }

    @Test("request and reply round trip")
    func requestReply() async throws {
        try await NATSTestServer.with { server in
            let responder = try connect(server, name: "responder")
            defer { responder.close() }
            let requester = try connect(server, name: "requester")
            defer { requester.close() }
            _ = try responder.subscribe("echo.reverse") { message in
                try? responder.respond(to: message, message.payload.reversed())
            }
            try responder.flush(timeout: .seconds(5))
            let reply = try await requester.request("echo.reverse", Array("hello".utf8), timeout: .seconds(5))
            #expect(String(decoding: reply.payload, as: UTF8.self) == "olleh")
            #expect(reply.subject.hasPrefix("_INBOX."))
            // A message without a reply subject: respond does nothing.
            try responder.respond(to: NATSMessage(subject: "x", reply: nil, payload: []), [1])
        }
    }

    @Test("a request nobody answers fails with .timeout after its timeout")
    func requestTimeout() async throws {
        try await NATSTestServer.with { server in
            let connection = try connect(server)
            defer { connection.close() }
            let seen = Collected<String>()
            _ = try connection.subscribe("silent") { seen.append($0.reply ?? "") }  // a subscriber that never replies
            try connection.flush(timeout: .seconds(5))
            let start = ContinuousClock.now
            let error = await #expect(throws: NATSError.self) {
                _ = try await connection.request("silent", [1, 2, 3], timeout: .milliseconds(300))
            }
            let elapsed = ContinuousClock.now - start
            #expect(error?.code == .timeout)
            #expect(elapsed >= .milliseconds(300))
            // Loose: a busy CI machine delays a timer by seconds; a lost timer would wait forever.
            #expect(elapsed < .seconds(8))
            #expect(seen.count == 1)
            #expect(seen.all.first?.hasPrefix("_INBOX.") == true)
        }
    }

    @Test("a request with no subscriber fails with .noResponders well before its timeout")
    func noResponders() async throws {
        try await NATSTestServer.with { server in
            let connection = try connect(server)
            defer { connection.close() }
            try connection.flush(timeout: .seconds(5))
            let start = ContinuousClock.now
            let error = await #expect(throws: NATSError.self) {
                _ = try await connection.request("nobody.home", [], timeout: .seconds(30))
            }
            #expect(error?.code == .noResponders)
            // Well before the 30 s timeout, even on a busy machine: the server answered at once.
            #expect(ContinuousClock.now - start < .seconds(10))
        }
    }

    @Test("1,000 concurrent requests each get their own answer")
    func concurrentRequests() async throws {
        try await NATSTestServer.with { server in
            let responder = try connect(server, name: "responder")
            defer { responder.close() }
            let requester = try connect(server, name: "requester")
            defer { requester.close() }
            _ = try responder.subscribe("double") { message in
                let value = UInt64(String(decoding: message.payload, as: UTF8.self))!
                try? responder.respond(to: message, Array(String(value * 2).utf8))
            }
            try responder.flush(timeout: .seconds(5))
            let answers = try await withThrowingTaskGroup(of: (UInt64, UInt64).self) { group in
                for value in UInt64(0)..<1000 {
                    group.addTask {
                        let reply = try await requester.request("double", Array(String(value).utf8), timeout: .seconds(20))
                        return (value, UInt64(String(decoding: reply.payload, as: UTF8.self)) ?? .max)
                    }
                }
                var answers: [UInt64: UInt64] = [:]
                for try await (value, answer) in group { answers[value] = answer }
                return answers
            }
            #expect(answers.count == 1000)
            #expect(answers.allSatisfy { $0.value == $0.key * 2 })
        }
    }

    @Test("server down: .disconnected; back on the same port: .connected and old subscriptions deliver again")
    func reconnects() async throws {
        try await NATSTestServer.with { server in
            let states = Collected<NATSConnectionState>()
            let connection = try connect(server, name: "survivor") { states.append($0) }
            defer { connection.close() }
            #expect(connection.state == .connected)
            let received = Collected<String>()
            _ = try connection.subscribe("after.outage") { received.append(String(decoding: $0.payload, as: UTF8.self)) }
            try connection.flush(timeout: .seconds(5))
            try connection.publish("after.outage", Array("before".utf8))
            #expect(await eventually { received.count == 1 })

            await server.stop()
            #expect(await eventually { states.all.contains(.disconnected) })
            #expect(connection.state == .disconnected)
            // Publishing while disconnected is buffered, not an error.
            try connection.publish("after.outage", Array("buffered".utf8))

            try await server.start()
            #expect(await eventually { states.all.last == .connected })
            #expect(connection.state == .connected)
            #expect(states.all == [.disconnected, .connected])
            #expect(connection.statistics.reconnects >= 1)

            // Another connection publishes; the subscription made before the outage gets it.
            let publisher = try connect(server, name: "publisher")
            defer { publisher.close() }
            #expect(
                await eventually {
                    try? publisher.publish("after.outage", Array("after".utf8))
                    return received.all.contains("after")
                })
            #expect(received.all.first == "before")
            #expect(received.all.contains("buffered"))
        }
    }

    @Test("retryOnFailedConnect: connect returns at once with no server, connects when it starts")
    func connectsLater() async throws {
        let server = try NATSTestServer.make()
        do {
            let states = Collected<NATSConnectionState>()
            let start = ContinuousClock.now
            let connection = try connect(server, name: "early") { states.append($0) }
            defer { connection.close() }
            #expect(ContinuousClock.now - start < .seconds(1))
            #expect(connection.state == .disconnected)
            let received = Collected<String>()
            _ = try connection.subscribe("early.bird") { received.append(String(decoding: $0.payload, as: UTF8.self)) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(connection.state == .disconnected)

            try await server.start()
            #expect(await eventually { connection.state == .connected })
            #expect(await eventually { states.all == [.connected] })
            try connection.flush(timeout: .seconds(5))
            try connection.publish("early.bird", Array("chirp".utf8))
            #expect(await eventually { received.all == ["chirp"] })
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }

    @Test("without retryOnFailedConnect, connecting to nothing fails with .notConnected")
    func failsWithoutRetry() throws {
        let port = try FreePort.find()
        let error = #expect(throws: NATSError.self) {
            _ = try NATSConnection.connect(urls: ["nats://127.0.0.1:\(port)"], name: "impatient", retryOnFailedConnect: false)
        }
        #expect(error?.code == .notConnected)
    }

    @Test("after close every call fails with .closed; close is idempotent")
    func closed() async throws {
        try await NATSTestServer.with { server in
            let states = Collected<NATSConnectionState>()
            let connection = try connect(server) { states.append($0) }
            let received = Collected<Int>()
            _ = try connection.subscribe("x") { _ in received.append(1) }
            connection.close()
            connection.close()
            #expect(connection.state == .closed)
            let publishError = #expect(throws: NATSError.self) { try connection.publish("x", [1]) }
            #expect(publishError?.code == .closed)
            let subscribeError = #expect(throws: NATSError.self) { _ = try connection.subscribe("x") { _ in } }
            #expect(subscribeError?.code == .closed)
            let flushError = #expect(throws: NATSError.self) { try connection.flush(timeout: .seconds(1)) }
            #expect(flushError?.code == .closed)
            let error = await #expect(throws: NATSError.self) { _ = try await connection.request("x", [], timeout: .seconds(1)) }
            #expect(error?.code == .closed)
            #expect(await eventually { states.all.last == .closed })
            #expect(states.all == [.closed])
            #expect(received.count == 0)
        }
    }

    @Test("a pending request fails with .closed when the connection closes")
    func closeFailsPendingRequests() async throws {
        try await NATSTestServer.with { server in
            let connection = try connect(server)
            _ = try connection.subscribe("slow") { _ in }
            try connection.flush(timeout: .seconds(5))
            async let outcome: NATSError? = {
                do throws(NATSError) {
                    _ = try await connection.request("slow", [], timeout: .seconds(30))
                    return nil
                } catch { return error }
            }()
            try await Task.sleep(for: .milliseconds(200))
            let start = ContinuousClock.now
            connection.close()
            #expect(await outcome?.code == .closed)
            #expect(ContinuousClock.now - start < .seconds(2))
        }
    }

    @Test("bad subjects fail with .invalidSubject and leave the connection working")
    func badSubjects() async throws {
        try await NATSTestServer.with { server in
            let connection = try connect(server)
            defer { connection.close() }
            for subject in ["", "a b", "a\tb", "a\r\nb", "a..b", ".a", "a.", "a.*", "a.>", "*", ">"] {
                let error = #expect(throws: NATSError.self, "publish \(subject.debugDescription)") { try connection.publish(subject, [1]) }
                #expect(error?.code == .invalidSubject)
            }
            #expect(throws: NATSError.self) { try connection.publish("ok", [1], reply: "bad reply") }
            for subject in ["", "a b", "a..b", "a.>.b", "a.", ">.a"] {
                let error = #expect(throws: NATSError.self, "subscribe \(subject.debugDescription)") { _ = try connection.subscribe(subject) { _ in } }
                #expect(error?.code == .invalidSubject)
            }
            let error = #expect(throws: NATSError.self) { _ = try connection.subscribe("ok", queueGroup: "bad group") { _ in } }
            #expect(error?.code == .invalidSubject)
            let badRequest = await #expect(throws: NATSError.self) { _ = try await connection.request("a.*", [], timeout: .seconds(1)) }
            #expect(badRequest?.code == .invalidSubject)

            // Wildcards and odd-but-legal tokens still work.
            let received = Collected<String>()
            _ = try connection.subscribe("a.*.c") { received.append($0.subject) }
            _ = try connection.subscribe("z.>") { received.append($0.subject) }
            try connection.flush(timeout: .seconds(5))
            try connection.publish("a.b.c", [1])
            try connection.publish("z.y.x", [1])
            try connection.publish("a.*x.c", [1])
            #expect(await eventually { received.count == 3 })
            #expect(Set(received.all) == ["a.b.c", "z.y.x", "a.*x.c"])
            #expect(connection.state == .connected)
        }
    }

    @Test("empty and large payloads arrive intact")
    func payloadSizes() async throws {
        try await NATSTestServer.with { server in
            let connection = try connect(server)
            defer { connection.close() }
            let received = Collected<[UInt8]>()
            _ = try connection.subscribe("sizes") { received.append($0.payload) }
            try connection.flush(timeout: .seconds(5))
            let large = (0..<500_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            try connection.publish("sizes", [])
            try connection.publish("sizes", large)
            #expect(await eventually { received.count == 2 })
            #expect(received.all == [[], large])
        }
    }
}
