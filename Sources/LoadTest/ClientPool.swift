import BenchSupport
import NIOCore
import SocketClient
import Synchronization

/// The simulated users' WebSockets, by index (drivers, then riders): opens them, hands each
/// frame to its user (and to the record), and while the run goes on reopens a socket that
/// closed (back-off from 100 ms doubling to 2 s, jittered; fresh tokens after a 401), then has
/// its user resume. User `i` starts on node `i % n`; a socket that closes or fails to open is
/// tried again on the next node in the list (wrapping; the same node again after a 401), and
/// the user stays where it reconnected. For `--drop-every` it also closes sockets on purpose.
final class ClientPool: Sendable {
    private struct Slot {
        var client: WebSocketClient?
        /// Numbers the connection attempts: a close is about the current one only if it
        /// carries the current number.
        var epoch = 0
        /// The attempt whose socket closed last.
        var closedEpoch = -1
        /// A reconnection loop runs for this slot.
        var reconnecting = false
        /// The socket was closed by `drop(share:)`.
        var dropped = false
        /// The node the user is on (or was to start on).
        var node = 0
    }

    /// Share of a drop taken from users mid-trip, as far as there are enough of them.
    static let midTripShare = 0.8

    private let traffic: CityTraffic
    private let users: [any SimulatedUser]
    private let connector: Connector
    private let tokens: BenchTokens
    private let recorder: Recorder?
    private let slots: Mutex<[Slot]>
    private let random: Mutex<SplitMix64>

    init(traffic: CityTraffic, connector: Connector, tokens: BenchTokens, recorder: Recorder?) {
        self.traffic = traffic
        users = traffic.driverList as [any SimulatedUser] + traffic.riderList as [any SimulatedUser]
        self.connector = connector
        self.tokens = tokens
        self.recorder = recorder
        let hubs = connector.hubs
        slots = Mutex((0..<users.count).map { Slot(node: hubs.node(for: $0)) })
        random = Mutex(SplitMix64(seed: traffic.settings.seed &* 3_000_017))
    }

    private var measurements: Measurements { traffic.measurements }

    /// Opens every socket, a bounded number at once; a socket that fails to open keeps trying
    /// in the background. Returns the sockets that opened now, in index order (nil: not yet).
    func openAll() async -> [WebSocketClient?] {
        for index in users.indices { measurements.started(on: connector.hubs.node(for: index)) }
        let clients = await connector.open(
            0..<users.count, path: { index in "/taxi/?token=" + self.tokens.token(index, node: self.connector.hubs.node(for: index)).token },
            events: { index in self.events(index, epoch: 0) }, outcome: measurements.connectionOutcome
        )
        for (index, client) in clients.enumerated() {
            if let client, install(client, at: index, epoch: 0) { continue }
            startReconnecting(index)
        }
        return clients
    }

    /// The sockets open now.
    var openClients: [WebSocketClient] {
        slots.withLock { $0.compactMap(\.client) }
    }

    /// Closes `share` of the open sockets abruptly (a TCP close, no WebSocket close frame),
    /// chosen at random (seeded), `midTripShare` of them among users driving or riding a trip;
    /// returns how many. Their users reconnect and resume.
    func drop(share: Double) -> Int {
        let open = slots.withLock { slots in slots.indices.filter { slots[$0].client != nil } }
        let count = Int((Double(open.count) * share).rounded())
        guard count > 0 else { return 0 }
        var midTrip = open.filter { users[$0].isMidTrip }
        var others = open.filter { !users[$0].isMidTrip }
        random.withLock { random in
            midTrip.shuffle(using: &random)
            others.shuffle(using: &random)
        }
        let fromMidTrip = min(midTrip.count, Int((Double(count) * Self.midTripShare).rounded(.up)))
        var chosen = Array(midTrip.prefix(fromMidTrip)) + others.prefix(count - fromMidTrip)
        chosen += midTrip.dropFirst(fromMidTrip).prefix(count - chosen.count)
        let clients = slots.withLock { slots in
            chosen.compactMap { index -> WebSocketClient? in
                guard let client = slots[index].client else { return nil }
                slots[index].dropped = true
                return client
            }
        }
        for client in clients { client.channel.close(promise: nil) }
        measurements.add(.drops, clients.count)
        return clients.count
    }

    private func events(_ index: Int, epoch: Int) -> WebSocketClient.Events {
        let user = users[index]
        let traffic = traffic
        let measurements = traffic.measurements
        let recorder = recorder
        return WebSocketClient.Events(
            text: { buffer in
                measurements.add(.framesIn)
                let frame = HubFrame.parse(buffer)
                recorder?.record(frame)
                user.received(frame, in: traffic)
            },
            closed: { self.closed(index, epoch: epoch) }
        )
    }

    /// Makes `client` (attempt `epoch`, on `node`) the socket of `index`, unless it closed
    /// already or the run ended; false then.
    private func install(_ client: WebSocketClient, at index: Int, epoch: Int, node: Int? = nil) -> Bool {
        slots.withLock { slots in
            guard traffic.isRunning, slots[index].epoch == epoch, slots[index].closedEpoch != epoch else { return false }
            slots[index].client = client
            if let node { slots[index].node = node }
            slots[index].reconnecting = false
            users[index].attach(client)
            return true
        }
    }

    private func closed(_ index: Int, epoch: Int) {
        measurements.add(.connectionsOpen, -1)
        let (current, dropped, reconnect) = slots.withLock { slots -> (Bool, Bool, Bool) in
            guard slots[index].epoch == epoch else { return (false, false, false) }
            slots[index].closedEpoch = epoch
            let dropped = slots[index].dropped
            slots[index].dropped = false
            if let client = slots[index].client {
                users[index].detach(client)
                slots[index].client = nil
            }
            guard traffic.isRunning, !slots[index].reconnecting else { return (true, dropped, false) }
            slots[index].reconnecting = true
            return (true, dropped, true)
        }
        if current, !dropped, traffic.isRunning { measurements.add(.unexpectedCloses) }
        if reconnect { Task { await self.reconnect(index) } }
    }

    private func startReconnecting(_ index: Int) {
        let start = slots.withLock { slots in
            guard !slots[index].reconnecting else { return false }
            slots[index].reconnecting = true
            return true
        }
        if start { Task { await reconnect(index) } }
    }

    /// Tries until a socket opens (or the run ends), from the node after the user's own on, one
    /// node further at each failure, then has the user resume on it.
    private func reconnect(_ index: Int) async {
        var delay = 0.1
        var jitter = SplitMix64(seed: traffic.settings.seed &+ UInt64(index) &* 0x9E37_79B9)
        let hubs = connector.hubs
        let home = slots.withLock { $0[index].node }
        var node = hubs.node(after: home)
        while traffic.isRunning {
            try? await Task.sleep(for: .seconds(delay * Double.random(in: 0.5...1, using: &jitter)))
            guard traffic.isRunning else { break }
            let epoch = slots.withLock { slots in
                slots[index].epoch += 1
                return slots[index].epoch
            }
            let (token, generation) = tokens.token(index, node: node)
            do {
                let client = try await connector.open(index, node: node, path: "/taxi/?token=" + token, events: events(index, epoch: epoch))
                measurements.connectionOutcome(nil)
                if install(client, at: index, epoch: epoch, node: node) {
                    measurements.add(.reconnects)
                    if node != home { measurements.moved(from: home, to: node) }
                    users[index].reconnected(client, in: traffic)
                    return
                }
                // Closed at once, or the run ended meanwhile.
                client.channel.close(promise: nil)
            } catch let error as WebSocketClient.OpenError {
                measurements.connectionOutcome(error)
                if case .refused(status: 401) = error {
                    await tokens.renew(node: node, after: generation)
                    delay = 0.1
                    continue
                }
            } catch {
                measurements.connectionOutcome(.failed("\(error)"))
            }
            delay = min(2, delay * 2)
            node = hubs.node(after: node)
        }
        slots.withLock { $0[index].reconnecting = false }
    }
}
