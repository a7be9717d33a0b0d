import DequeModule
import NIOCore
import Synchronization

/// Feeds one socket's messages to its `ClientSession` in arrival order: the session joins the hub
/// first, handles each message after the previous one is done, and leaves the hub last.
///
/// A message that arrives while nothing else of the socket waits is handled at once, on the
/// event loop that read it (`ClientSession.handleNow`); only what has to await an actor goes on
/// to a task. Tasks exist only while something waits, so an idle socket costs none, and GPS
/// fixes none either (`Hub.recordFix` never suspends). When `pauseAt` messages wait, `push` asks
/// the caller to stop reading the socket (TCP then slows the client down); reading resumes once
/// the backlog is down to `resumeAt`.
final class InboundPump: Sendable {
    static let pauseAt = 64
    static let resumeAt = 16

    /// A message waiting for the task: whole, or what `handleNow` left of it.
    private enum Pending {
        case whole(ByteBuffer)
        case remainder(ClientMessage)
    }

    private struct State {
        var messages: Deque<Pending> = []
        /// A task is at work (or about to be).
        var running = true
        var started = false
        var ended = false
        var paused = false
    }

    private enum Step {
        case start
        case message(Pending, resumeReading: Bool)
        case end
        case idle
    }

    private let session: ClientSession
    private let channel: any Channel
    private let executor: EventLoopTaskExecutor
    /// Runs once after the session has left the hub: gives the connection's slot back.
    private let onEnd: @Sendable () -> Void
    private let state = Mutex(State())

    /// Starts at once: the session joins the hub before any message is handled.
    init(session: ClientSession, channel: any Channel, executor: EventLoopTaskExecutor, onEnd: @escaping @Sendable () -> Void) {
        self.session = session
        self.channel = channel
        self.executor = executor
        self.onEnd = onEnd
        startTask()
    }

    /// Takes a complete text message; true when the caller should stop reading for now. Called
    /// on the socket's event loop.
    func push(_ message: ByteBuffer) -> Bool {
        let (handleHere, pause) = state.withLock { state -> (Bool, Bool) in
            guard !state.ended else { return (false, false) }
            guard state.running else {
                // Idle: nothing of this socket waits, so handling it here keeps the order.
                state.running = true
                return (true, false)
            }
            state.messages.append(.whole(message))
            let pause = !state.paused && state.messages.count >= Self.pauseAt
            if pause { state.paused = true }
            return (false, pause)
        }
        if handleHere { handleNow(message) }
        return pause
    }

    private func handleNow(_ message: ByteBuffer) {
        let remainder = session.handleNow(message)
        let startTask = state.withLock { state -> Bool in
            if let remainder { state.messages.prepend(.remainder(remainder)) }
            // The socket may have ended meanwhile (a write failed): the task ends the session.
            guard state.messages.isEmpty, !state.ended else { return true }
            state.running = false
            return false
        }
        if startTask { self.startTask() }
    }

    /// The socket is gone: what was read is still handled, then the session leaves the hub.
    func end() {
        let startTask = state.withLock { state -> Bool in
            guard !state.ended else { return false }
            state.ended = true
            defer { state.running = true }
            return !state.running
        }
        if startTask { self.startTask() }
    }

    /// Work runs on the socket's event loop (see `EventLoopTaskExecutor`).
    private func startTask() {
        Task(executorPreference: executor) { await self.work() }
    }

    private func work() async {
        while true {
            switch nextStep() {
            case .start:
                await session.start()
            case .message(let pending, let resumeReading):
                if resumeReading { channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in } }
                switch pending {
                case .whole(let message): await session.handle(message)
                case .remainder(let remainder): await session.finish(remainder)
                }
            case .end:
                await session.end()
                onEnd()
                return
            case .idle:
                return
            }
        }
    }

    private func nextStep() -> Step {
        state.withLock { state in
            if !state.started {
                state.started = true
                return .start
            }
            if let pending = state.messages.popFirst() {
                let resume = state.paused && state.messages.count <= Self.resumeAt
                if resume { state.paused = false }
                return .message(pending, resumeReading: resume)
            }
            // Once ended, `running` stays true: the task that ends the session is the last one.
            guard state.ended else {
                state.running = false
                return .idle
            }
            return .end
        }
    }
}
