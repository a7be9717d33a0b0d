import NIOCore

/// The socket's frame parser for the micro-benchmarks under `Benchmarks/`, which build in release
/// and so cannot use `@testable import`. Only code that imports `@_spi(Benchmarks) import Web`
/// can name it.
@_spi(Benchmarks)
public enum ClientFrameParsing {
    /// Parses one text frame exactly as `ClientSession` does (`ClientMessageParser.parse` on the
    /// frame's bytes, where they lie), to the typed message or the error the client would get.
    public static func parse(_ frame: ByteBuffer) -> ParsedClientFrame {
        ParsedClientFrame(result: ClientMessageParser.parse(frame))
    }
}

/// What `ClientFrameParsing.parse` made of a frame. It holds the whole parsed message, so a
/// benchmark that keeps it (`blackHole`) keeps every part of the parse.
@_spi(Benchmarks)
public struct ParsedClientFrame: Sendable {
    let result: Result<ClientMessage, WireError>

    /// The message's `type` (`update.location`, …), or nil when the frame was refused.
    public var type: String? {
        guard case .success(let message) = result else { return nil }
        return message.type
    }
}
