import Logging

/// Log set-up shared by the subcommands: swift-log to standard error at the configured level.
enum CommandLogging {
    static func bootstrap(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "taxi-hub")
    }
}
