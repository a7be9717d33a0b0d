import NIOCore
import SocketClient

/// Opens many WebSockets to the hubs, a bounded number of attempts in flight, each bound to the
/// next source address; connection `i` goes to node `i % n` unless told otherwise.
struct Connector: Sendable {
    let hubs: HubNodes
    let sources: SourceAddresses
    let group: any EventLoopGroup
    /// Attempts in flight at once.
    let concurrency: Int

    /// Opens one WebSocket to `path(i)` for each `i` in `indices` (which also picks its source
    /// address and its node, `i % n`). Each outcome goes to `outcome` as it happens (nil: opened); failures leave nil
    /// in the result, which is in `indices` order.
    func open(
        _ indices: Range<Int>, path: @escaping @Sendable (Int) -> String, events: @escaping @Sendable (Int) -> WebSocketClient.Events,
        outcome: @escaping @Sendable (WebSocketClient.OpenError?) -> Void
    ) async -> [WebSocketClient?] {
        await withTaskGroup(of: (Int, WebSocketClient?).self) { tasks in
            var clients = [WebSocketClient?](repeating: nil, count: indices.count)
            var next = indices.lowerBound
            var inFlight = 0
            while true {
                while inFlight < concurrency, next < indices.upperBound {
                    let index = next
                    next += 1
                    inFlight += 1
                    tasks.addTask {
                        do {
                            let client = try await open(index, node: hubs.node(for: index), path: path(index), events: events(index))
                            outcome(nil)
                            return (index, client)
                        } catch {
                            outcome(error as? WebSocketClient.OpenError ?? .failed("\(error)"))
                            return (index, nil)
                        }
                    }
                }
                guard let (index, client) = await tasks.next() else { break }
                inFlight -= 1
                clients[index - indices.lowerBound] = client
            }
            return clients
        }
    }

    /// Opens connection number `index` to `path` on `node`.
    func open(_ index: Int, node: Int, path: String, events: WebSocketClient.Events) async throws -> WebSocketClient {
        let endpoint = hubs[node]
        var options = WebSocketClient.Options()
        options.source = sources.address(for: index)
        return try await WebSocketClient.open(
            server: endpoint.address, host: "\(endpoint.host):\(endpoint.port)", path: path, options: options, group: group, events: events
        )
    }

    /// Closes every client, all at once, each waiting at most a couple of seconds for the server.
    static func closeAll(_ clients: [WebSocketClient?]) async {
        await withTaskGroup(of: Void.self) { tasks in
            for client in clients.compactMap({ $0 }) {
                tasks.addTask { await client.close() }
            }
        }
    }
}
