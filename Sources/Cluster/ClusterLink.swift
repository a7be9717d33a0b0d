import Foundation
import Hub
import NATSClient
import Synchronization

/// This node's NATS connection, counting what crosses it by kind (for `/metrics` and the
/// cross-node cost per message in docs/benchmarks-history.md).
final class ClusterLink: Sendable {
    /// What a message carries, as counted.
    enum Kind: String, CaseIterable, Sendable {
        case location, event, command, reply, notice
    }

    struct Tally: Sendable {
        var messages = 0
        var bytes = 0
    }

    let nats: NATSConnection
    private let sent = Mutex<[Kind: Tally]>([:])
    private let received = Mutex<[Kind: Tally]>([:])

    init(nats: NATSConnection) {
        self.nats = nats
    }

    /// Publishes without waiting; a message that cannot be handed to the NATS client (it is
    /// closed) is dropped: the cluster's resume and takeover make up for lost events.
    func publish(_ subject: String, _ value: some Encodable, kind: Kind) {
        let payload = ClusterCoding.encode(value)
        count(payload.count, kind, in: sent)
        try? nats.publish(subject, payload)
    }

    /// Publishes bytes already encoded (`FixMessage`).
    func publish(_ subject: String, bytes: [UInt8], kind: Kind) {
        count(bytes.count, kind, in: sent)
        try? nats.publish(subject, bytes)
    }

    /// Counts an arriving message that is not JSON (`FixMessage`).
    func received(_ message: NATSMessage, kind: Kind) {
        count(message.payload.count, kind, in: received)
    }

    func request(_ subject: String, _ value: some Encodable, timeout: Duration) async throws(NATSError) -> NATSMessage {
        let payload = ClusterCoding.encode(value)
        count(payload.count, .command, in: sent)
        let reply = try await nats.request(subject, payload, timeout: timeout)
        count(reply.payload.count, .reply, in: received)
        return reply
    }

    func respond(to message: NATSMessage, _ value: some Encodable) {
        let payload = ClusterCoding.encode(value)
        count(payload.count, .reply, in: sent)
        try? nats.respond(to: message, payload)
    }

    /// Decodes an arriving message, counting it.
    func decode<Value: Decodable>(_ type: Value.Type, from message: NATSMessage, kind: Kind) -> Value? {
        count(message.payload.count, kind, in: received)
        return ClusterCoding.decode(type, from: message.payload)
    }

    var tallies: (sent: [Kind: Tally], received: [Kind: Tally]) {
        (sent.withLock { $0 }, received.withLock { $0 })
    }

    private func count(_ bytes: Int, _ kind: Kind, in tally: borrowing Mutex<[Kind: Tally]>) {
        tally.withLock { tallies in
            tallies[kind, default: Tally()].messages += 1
            tallies[kind, default: Tally()].bytes += bytes
        }
    }
}
