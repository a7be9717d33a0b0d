import CNATS
import Synchronization

/// A process-wide table from a number to the Swift object that handles a C callback.
///
/// The C client is handed the number, not a pointer to a Swift object, as a callback's
/// closure. Its documentation does not bound when a callback may still fire after
/// `natsSubscription_Unsubscribe`/`_Destroy` or `natsConnection_Close`/`_Destroy` (delivery
/// and connection-event threads run on their own, holding their own references). A late
/// callback looks its number up, finds nothing once the entry is removed, and only frees
/// the C message: no pointer can dangle, whatever the C library's timing. Numbers are never
/// reused (64-bit counter).
final class CallbackRegistry<Entry: AnyObject & Sendable>: Sendable {
    private final class Shard: Sendable {
        let entries = Mutex<[UInt: Entry]>([:])
    }

    /// Sharded so that the delivery pool's threads rarely wait for one another.
    private let shards: [Shard]
    private let nextNumber = Atomic<UInt>(1)

    init(shardCount: Int = 16) {
        shards = (0..<shardCount).map { _ in Shard() }
    }

    private func shard(_ number: UInt) -> Shard {
        shards[Int(number % UInt(shards.count))]
    }

    /// Adds `entry` and returns its number (never 0, so it makes a non-null closure pointer).
    func add(_ entry: Entry) -> UInt {
        let number = nextNumber.wrappingAdd(1, ordering: .relaxed).oldValue
        shard(number).entries.withLock { $0[number] = entry }
        return number
    }

    func lookup(_ number: UInt) -> Entry? {
        shard(number).entries.withLock { $0[number] }
    }

    @discardableResult
    func remove(_ number: UInt) -> Entry? {
        shard(number).entries.withLock { $0.removeValue(forKey: number) }
    }

    static func closure(_ number: UInt) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: number)
    }

    static func number(_ closure: UnsafeMutableRawPointer?) -> UInt {
        UInt(bitPattern: closure)
    }
}

let subscriptionRegistry = CallbackRegistry<SubscriptionCore>()
let connectionEventsRegistry = CallbackRegistry<ConnectionEvents>()

/// A C pointer owned by one Swift object.
///
/// `@unchecked Sendable` is safe here because the wrapped pointer is only ever passed to
/// C client functions that the library documents as safe to call from any thread
/// (`natsConnection_*` on a connection, and `natsSubscription_Unsubscribe`/`_Destroy`, which
/// `SubscriptionCore` calls exactly once under its lock), and the pointee is freed only when
/// no Swift code can use the pointer again (see the owners' `deinit`/`destroy`).
struct CPointer: @unchecked Sendable {
    let raw: OpaquePointer
}

/// The Swift side of one C subscription: what to do with its messages, and its C object
/// until it is destroyed.
final class SubscriptionCore: Sendable {
    enum Delivery: Sendable {
        case handler(@Sendable (NATSMessage) -> Void)
        case replies(RequestTable)
    }

    let delivery: Delivery
    private let subscription = Mutex<CPointer?>(nil)

    init(delivery: Delivery) {
        self.delivery = delivery
    }

    /// Records the C subscription, once it exists.
    func attach(_ pointer: OpaquePointer) {
        subscription.withLock { $0 = CPointer(raw: pointer) }
    }

    /// Removes interest and frees the C subscription, once; later calls do nothing.
    func destroy() {
        guard let pointer = subscription.withLock({ current -> CPointer? in
            defer { current = nil }
            return current
        }) else { return }
        natsSubscription_Unsubscribe(pointer.raw)
        natsSubscription_Destroy(pointer.raw)
    }
}

/// The C message callback of every subscription: runs on a thread of the C client's global
/// delivery pool, one message of a subscription at a time, in order.
func deliverMessage(
    _ connection: OpaquePointer?, _ subscription: OpaquePointer?, _ message: OpaquePointer?, _ closure: UnsafeMutableRawPointer?
) {
    guard let message else { return }
    defer { natsMsg_Destroy(message) }
    guard let core = subscriptionRegistry.lookup(CallbackRegistry<SubscriptionCore>.number(closure)) else { return }
    switch core.delivery {
    case .handler(let handler):
        handler(copy(message))
    case .replies(let table):
        if natsMsg_IsNoResponders(message) {
            table.resolve(subject: String(cString: natsMsg_GetSubject(message)), with: .failure(NATSError(code: .noResponders, message: "no responders")))
        } else {
            let copied = copy(message)
            table.resolve(subject: copied.subject, with: .success(copied))
        }
    }
}

/// Copies a C message's subject, reply subject and payload into Swift values.
@inline(__always)
private func copy(_ message: OpaquePointer) -> NATSMessage {
    let subject = String(cString: natsMsg_GetSubject(message))
    let reply = natsMsg_GetReply(message).map { String(cString: $0) }
    let length = Int(natsMsg_GetDataLength(message))
    let payload: [UInt8]
    if length > 0, let data = natsMsg_GetData(message) {
        payload = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(start: data, count: length))
            initialized = length
        }
    } else {
        payload = []
    }
    return NATSMessage(subject: subject, reply: reply, payload: payload)
}

/// Connection state reports, from the C client's connection-event thread.
final class ConnectionEvents: Sendable {
    private let onStateChange: @Sendable (NATSConnectionState) -> Void
    /// The last state reported, whether any event has come yet, and whether `close()` was called.
    private let last = Mutex<(state: NATSConnectionState, sawEvent: Bool, closing: Bool)>((.disconnected, false, false))

    init(onStateChange: @escaping @Sendable (NATSConnectionState) -> Void) {
        self.onStateChange = onStateChange
    }

    /// The state after a connect call that succeeded at once (no report: nothing changed
    /// for the caller), unless an event already came.
    func connectedAtStart() {
        last.withLock { if !$0.sawEvent { $0.state = .connected } }
    }

    /// Called by `close()` before it closes the C connection: the disconnection the C client
    /// reports on the way to closed is not passed on (the caller gets `.closed` alone).
    func closing() {
        last.withLock { $0.closing = true }
    }

    /// Reports `state` when it differs from the last one; nothing after `.closed`.
    func report(_ state: NATSConnectionState) {
        let changed = last.withLock { last -> Bool in
            last.sawEvent = true
            guard last.state != state, last.state != .closed, !(last.closing && state != .closed) else { return false }
            last.state = state
            return true
        }
        if changed { onStateChange(state) }
    }
}

func connectionConnected(_ connection: OpaquePointer?, _ closure: UnsafeMutableRawPointer?) {
    connectionEventsRegistry.lookup(CallbackRegistry<ConnectionEvents>.number(closure))?.report(.connected)
}

func connectionDisconnected(_ connection: OpaquePointer?, _ closure: UnsafeMutableRawPointer?) {
    connectionEventsRegistry.lookup(CallbackRegistry<ConnectionEvents>.number(closure))?.report(.disconnected)
}

/// The closed event is the connection's last: its entry goes with it.
func connectionClosed(_ connection: OpaquePointer?, _ closure: UnsafeMutableRawPointer?) {
    connectionEventsRegistry.remove(CallbackRegistry<ConnectionEvents>.number(closure))?.report(.closed)
}
