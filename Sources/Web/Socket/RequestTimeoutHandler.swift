import NIOCore
import NIOHTTP1

/// How long an HTTP/1 client may take, in the style of nginx's `client_header_timeout`,
/// `client_body_timeout` and `keepalive_timeout`.
struct RequestTimeouts: Sendable {
    /// A request head must be complete this long after the connection's accept (first request)
    /// or after the first byte of the head (later requests).
    var head: TimeAmount
    /// A request body must be complete this long after its head.
    var body: TimeAmount
    /// A keep-alive connection may wait this long for the first byte of its next request.
    var keepAlive: TimeAmount

    init(head: Duration, body: Duration, keepAlive: Duration) {
        self.head = TimeAmount(head)
        self.body = TimeAmount(body)
        self.keepAlive = TimeAmount(keepAlive)
    }
}

/// Bounds the time an HTTP/1 connection may hold the hub while the client is the slow side
/// (slow loris heads, trickled bodies, silent keep-alive connections), the upgrade request
/// of a WebSocket included. A slow head or body gets `408` with a JSON `detail` and the
/// connection closes; an idle connection closes without a word. No timer runs while the hub
/// works on a request (its end read, its response not yet ended).
///
/// Sits between NIO's HTTP/1 codec and the upgrade handler; the upgrader removes it before
/// the WebSocket frame handler is added, so an upgraded socket pays nothing per frame. Per
/// request it costs a few counter updates and at most one timer (re)scheduled per phase.
///
/// Time is the event loop's (`EventLoop.now`), so tests drive it with an `EmbeddedEventLoop`.
final class RequestTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What the client was too slow to send; the label of `taxihub_connection_timeouts_total`.
    enum Phase: String, CaseIterable, Sendable {
        case head, body, idle
    }

    private let timeouts: RequestTimeouts
    private let metrics: HubMetrics

    /// Requests whose head was read, whose end was read, and whose response has ended.
    private var requestsBegun = 0
    private var requestsRead = 0
    private var responsesEnded = 0
    /// Since when the head now awaited is counted: the accept for the first request, the first
    /// byte after an idle wait for later ones; nil while no byte of a next request came.
    private var headSince: NIODeadline?
    /// Whether any byte of the awaited head has arrived (the first request's clock runs before).
    private var headBytesSeen = false
    private var bodySince = NIODeadline.uptimeNanoseconds(0)
    private var idleSince = NIODeadline.uptimeNanoseconds(0)
    /// The last request read asked for a protocol upgrade: until its answer, NIO may hand on
    /// bytes that are no HTTP parts (the rest of the input once the decoder is removed).
    private var lastRequestUpgrades = false
    /// Something was read while an upgrade was pending and passed on unseen: the counts can no
    /// longer be trusted, so the connection closes after the pending response.
    private var lostTrack = false
    /// The current read cycle delivered an HTTP part (so its bytes belonged to a known request).
    private var readParts = false
    private var started = false
    private var finished = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    init(timeouts: RequestTimeouts, metrics: HubMetrics) {
        self.timeouts = timeouts
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if lastRequestUpgrades, responsesEnded < requestsRead {
            lostTrack = true
            context.fireChannelRead(data)
            return
        }
        readParts = true
        switch unwrapInboundIn(data) {
        case .head(let head):
            requestsBegun += 1
            bodySince = context.eventLoop.now
            headSince = nil
            headBytesSeen = false
            lastRequestUpgrades = head.headers.contains(name: "upgrade")
        case .body:
            break
        case .end:
            requestsRead += 1
            if responsesEnded >= requestsRead { idleSince = context.eventLoop.now }
        }
        context.fireChannelRead(data)
        reschedule(context: context)
    }

    /// Every read of bytes ends here, also one that completed no HTTP part: on an idle
    /// connection, that is the first sign of a next request. (Bytes of a next request that came
    /// in one read with the end of the previous one go unnoticed: the idle timer bounds them.)
    func channelReadComplete(context: ChannelHandlerContext) {
        defer { readParts = false }
        if !finished, !readParts, isIdle {
            headBytesSeen = true
            if headSince == nil {
                headSince = context.eventLoop.now
                reschedule(context: context)
            }
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        responsesEnded += 1
        if lostTrack, responsesEnded >= requestsRead {
            stop()
            context.writeAndFlush(data, promise: promise)
            context.close(promise: nil)
            return
        }
        if isIdle {
            idleSince = context.eventLoop.now
            headSince = nil
            headBytesSeen = false
        }
        context.write(data, promise: promise)
        reschedule(context: context)
    }

    /// Nothing in flight: every request read and answered, no head begun.
    private var isIdle: Bool {
        requestsBegun == requestsRead && responsesEnded >= requestsRead
    }

    /// What the hub waits for from the client, and until when; nil while the hub works.
    private var awaited: (phase: Phase, deadline: NIODeadline)? {
        if responsesEnded < requestsRead { return nil }
        if requestsBegun > requestsRead { return (.body, bodySince + timeouts.body) }
        if let headSince { return (.head, headSince + timeouts.head) }
        return (.idle, idleSince + timeouts.keepAlive)
    }

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        headSince = context.eventLoop.now
        reschedule(context: context)
    }

    private func stop() {
        finished = true
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    /// Keeps one timer at or before the awaited deadline. A deadline that moved later leaves the
    /// timer as it is: when it fires, it looks again.
    private func reschedule(context: ChannelHandlerContext) {
        guard !finished, let deadline = awaited?.deadline else { return }
        if let timerDeadline, timerDeadline <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerDeadline = nil
            guard !finished, let awaited else { return }
            if awaited.deadline > context.eventLoop.now {
                reschedule(context: context)
            } else {
                timeOut(awaited.phase, context: context)
            }
        }
    }

    /// Answers `408` when a request is under way and unanswered, counts, and closes. A
    /// connection that never sent a byte counts as idle.
    private func timeOut(_ awaited: Phase, context: ChannelHandlerContext) {
        stop()
        let phase = awaited == .head && !headBytesSeen ? .idle : awaited
        metrics.connectionTimedOut(phase: phase)
        let detail: String? =
            switch phase {
            case .head: "The request head was not received within \(Self.seconds(timeouts.head)) seconds."
            case .body where responsesEnded < requestsBegun:
                "The request body was not received within \(Self.seconds(timeouts.body)) seconds."
            case .body, .idle: nil  // the request was already answered, or none began
            }
        if let detail {
            metrics.httpRefused(status: 408)
            let body = WireEncoding.encode(["detail": detail])
            var head = HTTPResponseHead(version: .http1_1, status: .requestTimeout)
            head.headers.add(name: "content-type", value: "application/json")
            head.headers.add(name: "content-length", value: String(body.utf8.count))
            head.headers.add(name: "connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.close(promise: nil)
    }

    /// `10`, `0.5`: a timeout as an operator configured it.
    private static func seconds(_ amount: TimeAmount) -> String {
        let seconds = Double(amount.nanoseconds) / 1e9
        return seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}
