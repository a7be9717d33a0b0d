import CNATS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library, opened once per process and never closed (`nats_Close` must not run while
/// a connection lives, and connections may live until the process ends).
enum NATSLibrary {
    /// Size of the C client's global message-delivery pool: every subscription is pinned to
    /// one of these threads, which runs its handler.
    static let deliveryThreads = max(2, min(8, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))

    private static let opened: Result<Void, NATSError> = {
        let status = nats_Open(-1)
        guard status == NATS_OK else { return .failure(NATSError(status: status, context: "cannot initialize the NATS C client")) }
        let pool = nats_SetMessageDeliveryPoolSize(Int32(deliveryThreads))
        guard pool == NATS_OK else { return .failure(NATSError(status: pool, context: "cannot size the NATS delivery pool")) }
        return .success(())
    }()

    static func open() throws(NATSError) {
        try opened.get()
    }
}

/// The subscriptions of one connection, until they are unsubscribed or the connection closes.
final class SubscriptionTable: Sendable {
    private let state = Mutex<(closed: Bool, entries: [UInt: SubscriptionCore])>((false, [:]))

    /// Adds a subscription; false when the connection closed meanwhile.
    func insert(_ number: UInt, _ core: SubscriptionCore) -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            state.entries[number] = core
            return true
        }
    }

    func remove(_ number: UInt) {
        _ = state.withLock { $0.entries.removeValue(forKey: number) }
    }

    /// Marks the table closed and hands back every subscription left.
    func close() -> [UInt: SubscriptionCore] {
        state.withLock { state in
            state.closed = true
            defer { state.entries.removeAll() }
            return state.entries
        }
    }
}

/// One connection to a NATS server (cluster), reconnecting forever.
///
/// Built on the NATS C client (`libnats`), whose connection functions are thread-safe: every
/// method may be called from any thread or task. Message handlers run on the C client's
/// global delivery pool (see `subscribe`).
public final class NATSConnection: Sendable {
    /// The `natsConnection*`; valid until `deinit` (after `close` the C calls just fail with
    /// `NATS_CONNECTION_CLOSED`).
    private let connection: CPointer
    private let events: ConnectionEvents
    private let subscriptions: SubscriptionTable
    private let replies: RequestTable
    private let closed = Atomic<Bool>(false)

    private init(connection: OpaquePointer, events: ConnectionEvents, subscriptions: SubscriptionTable, replies: RequestTable) {
        self.connection = CPointer(raw: connection)
        self.events = events
        self.subscriptions = subscriptions
        self.replies = replies
    }

    deinit {
        close()
        natsConnection_Destroy(connection.raw)
    }

    /// Connects; with `retryOnFailedConnect` true it returns at once even when no server answers
    /// yet and keeps trying in the background (state .disconnected until it connects).
    ///
    /// `onStateChange` runs on the C client's connection-event thread, once per change (not for
    /// the initial state: a connect that succeeds at once reports nothing; one that connects
    /// later reports `.connected`). After `close`, `.closed` comes shortly, asynchronously.
    /// `maxPendingMessages` bounds what a subscription may have waiting for its handler; past
    /// it the C client drops messages (a slow consumer) rather than grow without limit.
    public static func connect(
        urls: [String], name: String, retryOnFailedConnect: Bool = true,
        reconnectWait: Duration = .milliseconds(250), maxPendingMessages: Int = 65_536,
        onStateChange: @escaping @Sendable (NATSConnectionState) -> Void = { _ in }
    ) throws(NATSError) -> NATSConnection {
        try NATSLibrary.open()
        guard !urls.isEmpty else { throw NATSError(code: .other, message: "no NATS server URL given") }
        guard maxPendingMessages > 0, maxPendingMessages <= Int(Int32.max) / 1024 else {
            throw NATSError(code: .other, message: "maxPendingMessages out of range: \(maxPendingMessages)")
        }

        var optionsPointer: OpaquePointer?
        try check(natsOptions_Create(&optionsPointer), "cannot create NATS options")
        guard let options = optionsPointer else { throw NATSError(code: .other, message: "cannot create NATS options") }
        defer { natsOptions_Destroy(options) }

        let servers = urls.map { UnsafePointer<CChar>(strdup($0)) }
        defer { servers.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
        var serverArray: [UnsafePointer<CChar>?] = servers
        try check(serverArray.withUnsafeMutableBufferPointer { natsOptions_SetServers(options, $0.baseAddress, Int32(urls.count)) }, "invalid NATS server URLs \(urls)")
        try check(natsOptions_SetName(options, name), "cannot set the connection name")
        try check(natsOptions_SetAllowReconnect(options, true), "cannot allow reconnecting")
        try check(natsOptions_SetMaxReconnect(options, -1), "cannot set unlimited reconnects")
        try check(natsOptions_SetReconnectWait(options, milliseconds(reconnectWait)), "cannot set the reconnect wait")
        try check(natsOptions_SetMaxPendingMsgs(options, Int32(maxPendingMessages)), "cannot set the pending limit")
        try check(natsOptions_UseGlobalMessageDelivery(options, true), "cannot use the global delivery pool")

        let events = ConnectionEvents(onStateChange: onStateChange)
        let eventsNumber = connectionEventsRegistry.add(events)
        let closure = CallbackRegistry<ConnectionEvents>.closure(eventsNumber)
        var connectionPointer: OpaquePointer?
        let status: natsStatus
        do throws(NATSError) {
            try check(natsOptions_SetDisconnectedCB(options, connectionDisconnected, closure), "cannot set the disconnected callback")
            try check(natsOptions_SetReconnectedCB(options, connectionConnected, closure), "cannot set the reconnected callback")
            try check(natsOptions_SetClosedCB(options, connectionClosed, closure), "cannot set the closed callback")
            if retryOnFailedConnect {
                try check(natsOptions_SetRetryOnFailedConnect(options, true, connectionConnected, closure), "cannot set connect retries")
            }
            status = natsConnection_Connect(&connectionPointer, options)
            guard status == NATS_OK || (status == NATS_NOT_YET_CONNECTED && retryOnFailedConnect), connectionPointer != nil else {
                throw NATSError(status: status, context: "cannot connect to NATS at \(urls.joined(separator: ","))")
            }
        } catch {
            connectionEventsRegistry.remove(eventsNumber)
            if let connectionPointer { natsConnection_Destroy(connectionPointer) }
            throw error
        }
        if status == NATS_OK { events.connectedAtStart() }

        let replies = RequestTable()
        let connection = NATSConnection(connection: connectionPointer!, events: events, subscriptions: SubscriptionTable(), replies: replies)
        // One wildcard subscription receives the replies to every request of this connection.
        _ = try connection.subscribe(replies.wildcardSubject, queueGroup: nil, delivery: .replies(replies))
        return connection
    }

    /// The connection's state now (reconnecting counts as disconnected).
    public var state: NATSConnectionState {
        if closed.load(ordering: .acquiring) { return .closed }
        switch natsConnection_Status(connection.raw) {
        case NATS_CONN_STATUS_CONNECTED, NATS_CONN_STATUS_DRAINING_SUBS, NATS_CONN_STATUS_DRAINING_PUBS: return .connected
        case NATS_CONN_STATUS_CLOSED: return .closed
        default: return .disconnected
        }
    }

    /// Never blocks on the network: the C client buffers (also while reconnecting, up to its
    /// reconnect buffer, 8 MB); errors only when closed, the subject is invalid, or that buffer
    /// is full.
    public func publish(_ subject: String, _ payload: [UInt8], reply: String? = nil) throws(NATSError) {
        guard !closed.load(ordering: .relaxed) else { throw .closed }
        guard SubjectSyntax.isValidPublishSubject(subject) else { throw Self.invalidSubject(subject) }
        if let reply, !SubjectSyntax.isValidPublishSubject(reply) { throw Self.invalidSubject(reply) }
        let status = rawPublish(subject, reply: reply, payload)
        guard status == NATS_OK else { throw NATSError(status: status, context: "cannot publish to \(subject)") }
    }

    /// Subscribes `handler` to `subject` (wildcards allowed), in `queueGroup` when given.
    ///
    /// The handler runs on the C client's delivery threads (a global pool shared by all
    /// connections, so thousands of subscriptions do not mean thousands of threads): messages of
    /// one subscription arrive one at a time, in the order the server sent them. A handler that
    /// blocks holds up every subscription sharing its pool thread: hand slow work elsewhere.
    /// Dropping the returned `NATSSubscription` does not unsubscribe; `unsubscribe()` or
    /// `close()` does.
    public func subscribe(
        _ subject: String, queueGroup: String? = nil, _ handler: @escaping @Sendable (NATSMessage) -> Void
    ) throws(NATSError) -> NATSSubscription {
        let (number, core) = try subscribe(subject, queueGroup: queueGroup, delivery: .handler(handler))
        return NATSSubscription(subject: subject, number: number, core: core, table: subscriptions)
    }

    /// A request with a reply: never blocks a thread while waiting. Fails with `.timeout` after
    /// `timeout`, with `.noResponders` at once when the server knows no subscriber for
    /// `subject`, with `.closed` when the connection closes meanwhile, and with `.other`
    /// ("cancelled") when the calling task is cancelled.
    public func request(_ subject: String, _ payload: [UInt8], timeout: Duration) async throws(NATSError) -> NATSMessage {
        guard !closed.load(ordering: .relaxed) else { throw .closed }
        guard SubjectSyntax.isValidPublishSubject(subject) else { throw Self.invalidSubject(subject) }
        let replies = self.replies
        let token = replies.newToken()
        let cancelled = NATSError(code: .other, message: "the request to \(subject) was cancelled")
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<RequestTable.Outcome, Never>) in
                guard replies.register(token, continuation) else {
                    continuation.resume(returning: .failure(.closed))
                    return
                }
                let status = rawPublish(subject, reply: replies.replySubject(for: token), payload)
                guard status == NATS_OK else {
                    replies.resolve(token: token, with: .failure(NATSError(status: status, context: "cannot send the request to \(subject)")))
                    return
                }
                let timer = Task {
                    do { try await Task.sleep(for: timeout) } catch { return }
                    replies.resolve(token: token, with: .failure(NATSError(code: .timeout, message: "no reply from \(subject) within \(timeout)")))
                }
                replies.setTimer(timer, for: token)
                if Task.isCancelled { replies.resolve(token: token, with: .failure(cancelled)) }
            }
        } onCancel: {
            replies.resolve(token: token, with: .failure(cancelled))
        }
        return try outcome.get()
    }

    /// Sends a reply to a request message (publish to `message.reply`); no-op if it has none.
    public func respond(to message: NATSMessage, _ payload: [UInt8]) throws(NATSError) {
        guard let reply = message.reply else { return }
        try publish(reply, payload)
    }

    /// Waits until the server has processed everything published so far; use sparingly
    /// (it blocks the calling thread for a round trip).
    public func flush(timeout: Duration) throws(NATSError) {
        guard !closed.load(ordering: .relaxed) else { throw .closed }
        try Self.check(natsConnection_FlushTimeout(connection.raw, max(1, Self.milliseconds(timeout))), "flush failed")
    }

    /// The connection's counters.
    public var statistics: NATSStatistics {
        var statsPointer: OpaquePointer?
        guard natsStatistics_Create(&statsPointer) == NATS_OK, let stats = statsPointer else {
            return NATSStatistics(inMessages: 0, outMessages: 0, inBytes: 0, outBytes: 0, reconnects: 0)
        }
        defer { natsStatistics_Destroy(stats) }
        var (inMessages, inBytes, outMessages, outBytes, reconnects): (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        if natsConnection_GetStats(connection.raw, stats) == NATS_OK {
            natsStatistics_GetCounts(stats, &inMessages, &inBytes, &outMessages, &outBytes, &reconnects)
        }
        return NATSStatistics(inMessages: inMessages, outMessages: outMessages, inBytes: inBytes, outBytes: outBytes, reconnects: reconnects)
    }

    /// Closes the connection; later calls fail with .closed; idempotent. Also done on deinit.
    /// No handler runs after it returns, except ones already running. Messages published but
    /// not yet flushed may be lost: `flush` first when they matter.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for (number, core) in subscriptions.close() {
            subscriptionRegistry.remove(number)
            core.destroy()
        }
        replies.close()
        events.closing()
        natsConnection_Close(connection.raw)
    }

    // MARK: - Internals

    private func subscribe(_ subject: String, queueGroup: String?, delivery: SubscriptionCore.Delivery) throws(NATSError) -> (UInt, SubscriptionCore) {
        guard !closed.load(ordering: .acquiring) else { throw .closed }
        guard SubjectSyntax.isValidSubscribeSubject(subject) else { throw Self.invalidSubject(subject) }
        if let queueGroup, !SubjectSyntax.isValidQueueGroup(queueGroup) {
            throw NATSError(code: .invalidSubject, message: "invalid queue group \"\(queueGroup)\"")
        }
        let core = SubscriptionCore(delivery: delivery)
        let number = subscriptionRegistry.add(core)
        let closure = CallbackRegistry<SubscriptionCore>.closure(number)
        var subscriptionPointer: OpaquePointer?
        let status = subject.withCString { subject in
            if let queueGroup {
                queueGroup.withCString { natsConnection_QueueSubscribe(&subscriptionPointer, connection.raw, subject, $0, deliverMessage, closure) }
            } else {
                natsConnection_Subscribe(&subscriptionPointer, connection.raw, subject, deliverMessage, closure)
            }
        }
        guard status == NATS_OK, let subscriptionPointer else {
            subscriptionRegistry.remove(number)
            throw NATSError(status: status, context: "cannot subscribe to \(subject)")
        }
        core.attach(subscriptionPointer)
        guard subscriptions.insert(number, core) else {
            // `close` ran meanwhile and did not see this subscription.
            subscriptionRegistry.remove(number)
            core.destroy()
            throw .closed
        }
        return (number, core)
    }

    @inline(__always)
    private func rawPublish(_ subject: String, reply: String?, _ payload: [UInt8]) -> natsStatus {
        guard payload.count <= Int(Int32.max) else { return NATS_MAX_PAYLOAD }
        return payload.withUnsafeBytes { bytes in
            subject.withCString { subject in
                if let reply {
                    reply.withCString { natsConnection_PublishRequest(connection.raw, subject, $0, bytes.baseAddress, Int32(bytes.count)) }
                } else {
                    natsConnection_Publish(connection.raw, subject, bytes.baseAddress, Int32(bytes.count))
                }
            }
        }
    }

    private static func invalidSubject(_ subject: String) -> NATSError {
        NATSError(code: .invalidSubject, message: "invalid subject \"\(subject)\"")
    }

    private static func check(_ status: natsStatus, _ context: @autoclosure () -> String) throws(NATSError) {
        guard status == NATS_OK else { throw NATSError(status: status, context: context()) }
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// One subscription; see `NATSConnection.subscribe`.
public final class NATSSubscription: Sendable {
    public let subject: String
    private let number: UInt
    private let core: SubscriptionCore
    private let table: SubscriptionTable

    init(subject: String, number: UInt, core: SubscriptionCore, table: SubscriptionTable) {
        self.subject = subject
        self.number = number
        self.core = core
        self.table = table
    }

    /// Stops delivery: no handler call starts after this returns (one already running may
    /// finish). Idempotent; also fine after the connection closed.
    public func unsubscribe() {
        subscriptionRegistry.remove(number)
        table.remove(number)
        core.destroy()
    }
}
