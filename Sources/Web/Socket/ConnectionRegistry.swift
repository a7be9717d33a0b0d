import Synchronization

/// The open WebSockets: counted against a cap below the open-files limit (a server that runs
/// out of descriptors crashes instead of refusing politely), and reachable so a graceful
/// stop can close each with 1001.
final class ConnectionRegistry: Sendable {
    let limit: Int
    private struct State {
        var open: [UInt64: ClientConnection] = [:]
        var reserved = 0
        var nextID: UInt64 = 1
        var draining = false
    }

    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Open plus reserved slots.
    var count: Int {
        state.withLock { $0.reserved }
    }

    /// Whether a new socket would be accepted now.
    var hasRoom: Bool {
        state.withLock { !$0.draining && $0.reserved < limit }
    }

    /// Takes a slot and returns its connection id, or nil at the cap or while draining.
    func reserve() -> UInt64? {
        state.withLock { state in
            guard !state.draining, state.reserved < limit else { return nil }
            state.reserved += 1
            defer { state.nextID += 1 }
            return state.nextID
        }
    }

    /// Registers the connection of a reserved slot; closes it at once when a drain began meanwhile.
    func register(_ connection: ClientConnection) {
        let draining = state.withLock { state in
            state.open[connection.connectionID.rawValue] = connection
            return state.draining
        }
        if draining { connection.close(.shutdown) }
    }

    func release(_ id: UInt64) {
        state.withLock { state in
            state.open[id] = nil
            state.reserved -= 1
        }
    }

    /// Refuses new sockets from now on and asks every open one to close with 1001.
    func drain() {
        let open = state.withLock { state in
            state.draining = true
            return Array(state.open.values)
        }
        for connection in open { connection.close(.shutdown) }
    }
}
