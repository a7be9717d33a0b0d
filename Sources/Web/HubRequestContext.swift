import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's core context plus the address of the
/// client's connection (log-in throttling counts attempts per address).
public struct HubRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
