import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// Request context of the WebSocket router; keeps the connection's channel so a client
/// that stops reading can be cut off even while a write to it is stuck.
struct SocketRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }
}
