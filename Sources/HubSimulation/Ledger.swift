import Foundation
import Hub
import Synchronization

/// What a simulated operation ended with, as its task reports it to the harness.
enum Outcome: Sendable {
    case created(TripView)
    case updated(TripView)
    case canceled(TripView)
    case refused(HubError)
    /// A fix taken: the receipt the client settles before its next request (`Hub.recordFix`).
    case located(FixReceipt)
    case connected(joined: Set<UUID>, resumes: [ResumeResult])
    case disconnected
    case flushed(succeeded: Bool)
    /// A sign-up's answer: the account, durable (nil: the username was taken), or the refusal.
    case signedUp(Result<User?, HubError>)
    /// The actors' own state, read at the end of a run.
    case actorStates([Trip])
    /// A dispatch tick ended (`Hub.dispatchTick`).
    case ticked
    /// A driver went online or offline (`Hub.setAvailability`).
    case availability(online: Bool)
    /// A driver declined an offer (`Hub.declineTrip`).
    case declined
}

/// One `resume` a reconnecting client made.
struct ResumeResult: Sendable {
    let tripID: UUID
    let lastSeen: Int64
    let reply: Result<TripActor.ResumeReply, HubError>
}

/// The simulated operations' mailbox to the harness: each task adds its outcome when it ends,
/// and the harness loop takes them after every step (both on the harness thread).
final class Ledger: Sendable {
    struct Entry: Sendable {
        /// The client whose operation it was; nil for a snapshot, a sign-up or the end-of-run read.
        let client: Int?
        let outcome: Outcome
    }

    private let entries = Mutex<[Entry]>([])

    func add(_ entry: Entry) {
        entries.withLock { $0.append(entry) }
    }

    func take() -> [Entry] {
        entries.withLock { entries in
            defer { entries = [] }
            return entries
        }
    }
}
