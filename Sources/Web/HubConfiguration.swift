import Configuration
import Foundation
import Logging

/// Every knob of a running hub, resolved once at start-up and handed down as plain values.
public struct HubConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8000
    /// Where the embedded store and the generated JWT secret live.
    public var dataDirectory = "./data"
    /// Where uploaded photos are stored; served under `/media/`.
    public var mediaDirectory = "./media"
    /// `postgres://user:pass@host:port/db`; nil keeps state in the embedded SQLite store.
    public var databaseURL: String?
    /// HS256 secret of at least 32 bytes; nil means "generate once and keep it in the data folder".
    public var jwtSecret: String?
    public var accessTokenLifetime: Duration = .seconds(60 * 60)
    public var refreshTokenLifetime: Duration = .seconds(24 * 60 * 60)
    public var bcryptCost: UInt8 = 12
    public var snapshotInterval: Duration = .seconds(1)
    /// Largest WebSocket message the hub reads; larger ones get a `too_large` error.
    public var maxFrameSize = 64 * 1024
    /// Events that may wait for one slow client before it is disconnected with code 1008.
    public var outboundQueueLength = 1024
    /// Open WebSockets accepted at once; nil means the open-files limit minus `fileReserve`.
    public var maxConnections: Int?
    /// Descriptors kept free for files, the database and plain HTTP when capping sockets.
    public var fileReserve = 512
    /// Largest HTTP request body (sign-up photos).
    public var maxUploadSize = 8 * 1024 * 1024
    public var logLevel: Logger.Level = .info

    public init() {}

    /// Reads every knob from `reader`, keeping the in-code default where a key is absent.
    /// Keys are the property names (`port`, `jwtSecret`, `snapshotInterval` in seconds, ...).
    public init(reader: ConfigReader) throws {
        let defaults = HubConfiguration()
        host = reader.string(forKey: "host", default: defaults.host)
        port = reader.int(forKey: "port", default: defaults.port)
        dataDirectory = reader.string(forKey: "dataDir", default: defaults.dataDirectory)
        mediaDirectory = reader.string(forKey: "mediaDir", default: defaults.mediaDirectory)
        jwtSecret = reader.string(forKey: "jwtSecret", isSecret: true)
        databaseURL = reader.string(forKey: "databaseUrl", isSecret: true).flatMap { $0.isEmpty ? nil : $0 }
        accessTokenLifetime = .seconds(reader.int(forKey: "accessTokenLifetime", default: 3600))
        refreshTokenLifetime = .seconds(reader.int(forKey: "refreshTokenLifetime", default: 86400))
        let cost = reader.int(forKey: "bcryptCost", default: Int(defaults.bcryptCost))
        guard (4...31).contains(cost) else { throw ConfigurationError("bcryptCost must be between 4 and 31, not \(cost).") }
        bcryptCost = UInt8(cost)
        let interval = reader.double(forKey: "snapshotInterval", default: 1)
        guard interval > 0, interval.isFinite else {
            throw ConfigurationError("snapshotInterval must be a positive number of seconds, not \(interval).")
        }
        snapshotInterval = .milliseconds(Int64(interval * 1000))
        maxFrameSize = reader.int(forKey: "maxFrameSize", default: defaults.maxFrameSize)
        outboundQueueLength = reader.int(forKey: "outboundQueueLength", default: defaults.outboundQueueLength)
        maxConnections = reader.int(forKey: "maxConnections")
        fileReserve = reader.int(forKey: "fileReserve", default: defaults.fileReserve)
        maxUploadSize = reader.int(forKey: "maxUploadSize", default: defaults.maxUploadSize)
        let level = reader.string(forKey: "logLevel", default: "info")
        guard let parsed = Logger.Level(rawValue: level) else {
            throw ConfigurationError("logLevel must be one of \(Logger.Level.allCases.map(\.rawValue)), not \(level).")
        }
        logLevel = parsed
        for (name, value) in [("maxFrameSize", maxFrameSize), ("outboundQueueLength", outboundQueueLength)] where value < 1 {
            throw ConfigurationError("\(name) must be positive, not \(value).")
        }
        if let maxConnections, maxConnections < 1 {
            throw ConfigurationError("maxConnections must be positive, not \(maxConnections).")
        }
    }
}

/// A configuration value that cannot be used; the message says which and why.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
