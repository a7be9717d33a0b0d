import Synchronization

/// The open WebSockets: counted against a cap below the open-files limit (a server that runs
/// out of descriptors crashes instead of refusing politely), refused until the hub's state is
/// loaded, and reachable so a graceful stop can close each with 1001.
final class ConnectionRegistry: Sendable {
    /// Where the hub is in its life, as far as new sockets are concerned.
    enum Phase: Sendable {
        case loading
        case accepting
        case draining
    }

    let limit: Int
    /// Most sockets one user may hold open at once.
    let perUserLimit: Int
    private struct State {
        var phase = Phase.loading
        var open: [UInt64: ClientConnection] = [:]
        var reserved = 0
        var nextID: UInt64 = 1
        /// Reserved slots per user, and whose each slot is.
        var byUser: [Int: Int] = [:]
        var slotUsers: [UInt64: Int] = [:]
    }

    private let state = Mutex(State())

    init(limit: Int, perUserLimit: Int = .max) {
        self.limit = limit
        self.perUserLimit = perUserLimit
    }

    /// Open plus reserved slots.
    var count: Int {
        state.withLock { $0.reserved }
    }

    /// Items waiting in outbound queues: the total and the longest single queue.
    var queuedOutbound: (total: Int, longest: Int) {
        let open = state.withLock { Array($0.open.values) }
        let counts = open.map(\.outbound.count)
        return (counts.reduce(0, +), counts.max() ?? 0)
    }

    /// Why a new socket would be refused now, or nil when it would be accepted.
    var refusal: String? {
        state.withLock { state in
            switch state.phase {
            case .loading: "The hub is loading its state; try again shortly."
            case .draining: "The hub is shutting down."
            case .accepting: state.reserved < limit ? nil : "The hub is at its connection limit; try again later."
            }
        }
    }

    /// Whether `userID` holds as many sockets as one user may.
    func isAtUserLimit(_ userID: Int) -> Bool {
        state.withLock { ($0.byUser[userID] ?? 0) >= perUserLimit }
    }

    /// Takes a slot (counted for `userID` when given) and returns its connection id, or nil when
    /// sockets are refused: the hub is not accepting, or is full, or the user holds its most.
    func reserve(for userID: Int? = nil) -> UInt64? {
        state.withLock { state in
            guard state.phase == .accepting, state.reserved < limit else { return nil }
            if let userID {
                guard (state.byUser[userID] ?? 0) < perUserLimit else { return nil }
                state.byUser[userID, default: 0] += 1
                state.slotUsers[state.nextID] = userID
            }
            state.reserved += 1
            defer { state.nextID += 1 }
            return state.nextID
        }
    }

    /// Registers the connection of a reserved slot; closes it at once when a drain began meanwhile.
    func register(_ connection: ClientConnection) {
        let draining = state.withLock { state in
            state.open[connection.connectionID.rawValue] = connection
            return state.phase == .draining
        }
        if draining { connection.close(.shutdown) }
    }

    func release(_ id: UInt64) {
        state.withLock { state in
            state.open[id] = nil
            state.reserved -= 1
            if let userID = state.slotUsers.removeValue(forKey: id) {
                state.byUser[userID]! -= 1
                if state.byUser[userID] == 0 { state.byUser[userID] = nil }
            }
        }
    }

    /// Starts accepting sockets, once the hub's state is loaded.
    func startAccepting() {
        state.withLock { state in
            if state.phase == .loading { state.phase = .accepting }
        }
    }

    /// Refuses new sockets from now on and asks every open one to close with 1001.
    func drain() {
        let open = state.withLock { state in
            state.phase = .draining
            return Array(state.open.values)
        }
        for connection in open { connection.close(.shutdown) }
    }
}
