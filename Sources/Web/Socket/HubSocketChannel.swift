import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// The HTTP/1 child channel of the hub's server: plain requests go to the Hummingbird router;
/// an upgrade of `/taxi/` with a good token becomes a WebSocket served by `SocketFrameHandler`
/// right in the NIO pipeline.
///
/// An upgraded connection keeps no task of its own: frames are handled on the event loop, and
/// short tasks run only while a client's messages or outbound events wait. (Hummingbird's
/// WebSocket layer keeps a chain of suspended async frames and a ping task per socket, about
/// 30 KB of an idle connection's 35 KB here; see docs/benchmarks-history.md.)
struct HubSocketChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        /// The socket handler is in the pipeline and owns the connection.
        case webSocket
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// An upgrade that was refused: the connection gets `response` and closes.
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, APIError)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let sockets: SocketController
    /// Largest frame the WebSocket decoder assembles; larger ones close the socket with 1009.
    let maxFrameSize: Int
    /// How long a client may take over a request head, a body, or an idle keep-alive wait.
    let timeouts: RequestTimeouts

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // The verdict on the handshake, from `shouldUpgrade` to the handler that acts on it.
            let verdict = NIOLoopBoundBox<Result<SocketController.Admission, APIError>?>(nil, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: maxFrameSize,
                shouldUpgrade: { channel, head in
                    channel.eventLoop.makeFutureWithTask {
                        await sockets.admitUpgrade(uri: head.uri)
                    }.map { result in
                        verdict.value = result
                        guard case .success = result else { return nil }
                        return HTTPHeaders()
                    }
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard case .success(let admission) = verdict.value else { throw ChannelError.inappropriateOperationForState }
                        // The socket keeps itself alive with pings; no HTTP timer runs on its frames.
                        let timeoutHandler = try channel.pipeline.syncOperations.context(handlerType: RequestTimeoutHandler.self)
                        channel.pipeline.syncOperations.removeHandler(context: timeoutHandler, promise: nil)
                        try channel.pipeline.syncOperations.addHandler(sockets.makeFrameHandler(admission, channel: channel, logger: logger))
                        return .webSocket
                    }
                }
            )
            let serverUpgrade = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        if case .failure(let response) = verdict.value { return .refused(http, response) }
                        return .notUpgraded(http)
                    }
                }
            )
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: serverUpgrade)
            configuration.enablePipelining = false  // HTTP is pipelined by NIOAsyncChannel
            configuration.enableErrorHandling = false  // Hummingbird answers errors
            configuration.enableResponseHeaderValidation = false  // HTTPTypes validates already
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            let upgradeHandler = try channel.pipeline.syncOperations.handler(type: NIOTypedHTTPServerUpgradeHandler<UpgradeResult>.self)
            try channel.pipeline.syncOperations.addHandler(
                RequestTimeoutHandler(timeouts: timeouts, metrics: sockets.metrics), position: .before(upgradeHandler)
            )
            return Value(upgradeResult: result, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .notUpgraded(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http, let response):
                try await http.executeThenClose { _, outbound in
                    var headers = HTTPFields()
                    headers[.contentType] = "application/json"
                    headers[.contentLength] = String(response.body.utf8.count)
                    headers[.connection] = "close"
                    try await outbound.write(contentsOf: [
                        .head(HTTPResponse(status: response.status, headerFields: headers)),
                        .body(ByteBuffer(string: response.body)),
                        .end(nil),
                    ])
                }
            case .webSocket:
                // `SocketFrameHandler` runs the socket from here on; this task is done.
                break
            }
        } catch {
            logger.debug("connection ended during the upgrade", metadata: ["error": "\(error)"])
        }
    }
}
