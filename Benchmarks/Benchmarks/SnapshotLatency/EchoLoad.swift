import BenchSupport

/// The latency load: WebSocket clients that send `echo.message` frames at a fixed total rate,
/// spread round-robin over the connections.
struct EchoLoad: Sendable {
    let connections: [EchoConnection]
    /// Messages per second, all connections together.
    let rate: Int

    /// Opens `count` WebSockets to `path` on 127.0.0.1:`port` (all at once) whose replies go to `recorder`.
    static func open(count: Int, rate: Int, port: Int, path: String, recorder: LatencyRecorder) async throws -> EchoLoad {
        let connections = try await withThrowingTaskGroup(of: EchoConnection.self) { group in
            for _ in 0..<count {
                group.addTask { try await EchoConnection.open(port: port, path: path, recorder: recorder) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        return EchoLoad(connections: connections, rate: rate)
    }

    /// Sends `rate × duration` messages labelled `phase`, the k-th scheduled at start + k / rate;
    /// each carries its scheduled time, so lateness of the sender counts as latency. Returns how
    /// many it sent.
    func drive(phase: Int, for duration: Duration) async throws -> Int {
        let total = Int(duration.inSeconds * Double(rate))
        let interval = 1e9 / Double(rate)
        let start = MonotonicClock.nanoseconds()
        var sent = 0
        while sent < total {
            let elapsed = Double(MonotonicClock.nanoseconds() - start)
            let due = min(total, Int(elapsed / interval) + 1)
            while sent < due {
                let scheduled = start + UInt64(Double(sent) * interval)
                connections[sent % connections.count].send(EchoMessage.text(phase: phase, scheduledAt: scheduled))
                sent += 1
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        return sent
    }

    func close() async {
        await withTaskGroup(of: Void.self) { group in
            for connection in connections {
                group.addTask { await connection.close() }
            }
        }
    }
}
