import BenchSupport
import Foundation
import Synchronization

/// `--record PATH`: what the hub acknowledged to the simulated clients, as JSON lines
/// (docs/soak.md, "The load generator's record"). Trip states and locations are written the first time any client
/// receives their `(trip, seq)`; lines collect in memory and a background task writes them out
/// every half second, so the message path only formats a line under a short lock.
final class Recorder: Sendable {
    /// The `end` line's summary.
    struct Summary: Encodable {
        let acknowledged: LoadTestReport.Acknowledged
        let reconnects: Int
        let drops: Int
        let errors: [String: Int]
        let connectionFailures: [String: Int]
        let tripsCompleted: Int
        let locationLatencyMs: LatencySummary
    }

    private struct State {
        var seen: [String: SeqSet] = [:]
        var pending = ""
        var acknowledged = LoadTestReport.Acknowledged()
    }

    static let flushInterval = Duration.milliseconds(500)

    private let state = Mutex(State())
    private let file: FileHandle
    private let flusher = Mutex<Task<Void, Never>?>(nil)
    /// Held while taking the pending lines and writing them, so writes keep their order.
    private let writer = Mutex(())

    /// Creates (or truncates) `path` and starts writing.
    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw LoadTest.InvalidSettings(description: "--record: cannot write \(path).")
        }
        self.file = file
        flusher.withLock { flusher in
            flusher = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.flushInterval)
                    self?.flush()
                }
            }
        }
    }

    var acknowledged: LoadTestReport.Acknowledged { state.withLock { $0.acknowledged } }

    /// Records a trip state or location the first time its `(trip, seq)` arrives.
    func record(_ frame: HubFrame) {
        switch frame {
        case .trip(let trip):
            guard let seq = trip.seq else { return }
            let time = Self.now
            state.withLock { state in
                guard state.seen[trip.id, default: SeqSet()].insert(seq) else { return }
                state.acknowledged.events += 1
                state.acknowledged.byStatus[trip.status, default: 0] += 1
                state.pending += #"{"kind":"event","t":\#(time),"trip":"\#(trip.id)","seq":\#(seq),"type":"echo.message","#
                    + #""status":"\#(trip.status)","driver":\#(Self.json(trip.driverID)),"rider":\#(Self.json(trip.riderID))}"# + "\n"
            }
        case .location(let tripID, let driverID, let point, let seq):
            guard let seq else { return }
            let time = Self.now
            state.withLock { state in
                guard state.seen[tripID, default: SeqSet()].insert(seq) else { return }
                state.acknowledged.locations += 1
                state.pending += #"{"kind":"location","t":\#(time),"trip":"\#(tripID)","seq":\#(seq),"driver":\#(driverID),"#
                    + #""lat":\#(point.lat),"lng":\#(point.lng)}"# + "\n"
            }
        case .error, .resumeDone, .offerWithdrawn, .searching, .echoedFix, .other:
            break
        }
    }

    func start(_ settings: LoadTestSettings) {
        let recorded: [String: Any] = [
            "url": settings.url, "urls": settings.urls, "drivers": settings.drivers, "riders": settings.riders, "gps_hz": settings.gpsHz,
            "duration_s": settings.duration, "warmup_s": settings.warmup, "drop_every_s": settings.dropEvery,
            "drop_share": settings.dropShare, "seed": settings.seed, "user_prefix": settings.userPrefix,
            "trip_blocks": settings.tripBlocks, "rider_pause_s": settings.riderPause, "accept_timeout_s": settings.acceptTimeout,
            "trip_rate": settings.tripRate, "trip_speed": settings.tripSpeed, "decline_share": settings.declineShare,
            "ignore_share": settings.ignoreShare, "unserved_share": settings.unservedShare,
        ]
        let json = (try? JSONSerialization.data(withJSONObject: recorded, options: [.sortedKeys, .withoutEscapingSlashes])).map { String(decoding: $0, as: UTF8.self) }
        append(#"{"kind":"start","t":\#(Self.now),"settings":\#(json ?? "{}")}"#)
    }

    /// One second of the load (docs/soak.md, the record's `window` line).
    func window(sent: Int, received: Int, latency: LatencySummary, open: Int, reconnects: Int, errors: Int, drops: Int) {
        func ms(_ value: Double) -> String { latency.count > 0 ? "\(value)" : "null" }
        append(
            #"{"kind":"window","t":\#(Self.now),"sent":\#(sent),"received":\#(received),"p50_ms":\#(ms(latency.p50)),"#
                + #""p99_ms":\#(ms(latency.p99)),"max_ms":\#(ms(latency.max)),"open":\#(open),"reconnects":\#(reconnects),"#
                + #""errors":\#(errors),"drops":\#(drops)}"#
        )
    }

    func drop(clients: Int) {
        append(#"{"kind":"drop","t":\#(Self.now),"clients":\#(clients)}"#)
    }

    /// Writes the `end` line and everything still pending, and closes the file.
    func end(_ summary: Summary) {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let json = (try? encoder.encode(summary)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        append(#"{"kind":"end","t":\#(Self.now),"summary":\#(json)}"#)
        flusher.withLock { $0?.cancel() }
        flush()
        try? file.close()
    }

    private func append(_ line: String) {
        state.withLock { $0.pending += line + "\n" }
    }

    private func flush() {
        writer.withLock { _ in
            let text = state.withLock { state -> String in
                defer { state.pending = "" }
                return state.pending
            }
            guard !text.isEmpty else { return }
            try? file.write(contentsOf: Data(text.utf8))
        }
    }

    private static var now: Double { Date().timeIntervalSince1970 }

    private static func json(_ id: Int?) -> String {
        id.map(String.init) ?? "null"
    }
}
