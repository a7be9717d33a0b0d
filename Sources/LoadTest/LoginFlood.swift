import BenchSupport
import Foundation
import Histogram
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Log-ins at a steady rate during the measured window, switched on and off every `period`
/// seconds, so the location latency with and without log-ins comes from the same run, the same
/// load and the same minutes of a noisy machine (`Measurements` files each location sample under
/// the state of the flood when it arrived).
///
/// Each log-in is a real `POST /api/log_in/` with a right password, so the hub runs bcrypt for
/// every one the throttle lets through: start the hub with a high `--login-rate-per-address`,
/// or the flood measures the throttle instead (the report counts the 429s).
struct LoginFlood: Sendable {
    static let password = "loadtest-login-password"

    /// The hubs that answered at the start; log-in `k` goes to `endpoints[k % count]`, and
    /// every account is signed up (or found) on each of them.
    let endpoints: [HubEndpoint]
    let rate: Double
    let accounts: Int
    let prefix: String
    let period: Double

    /// The usernames, each signed up unless it already exists. Sign-ups run bcrypt on the hub,
    /// one at a time here so they do not trip its `maxPasswordChecks`.
    func prepareAccounts() async throws -> [String] {
        var usernames: [String] = []
        for index in 1...max(1, accounts) {
            let username = "\(prefix)-login-\(index)"
            let fields = ["username": username, "password1": Self.password, "password2": Self.password, "group": "rider"]
            for endpoint in endpoints {
                let (status, body) = try await Self.post(endpoint.base + "/api/sign_up/", fields: fields)
                let taken = status == 400 && String(decoding: body, as: UTF8.self).contains("already exists")
                guard status == 201 || taken else {
                    throw HubEndpoint.Unusable(
                        description: "sign-up of \(username) at \(endpoint.base) answered \(status): \(String(decoding: body.prefix(300), as: UTF8.self))"
                    )
                }
            }
            usernames.append(username)
        }
        return usernames
    }

    /// Fires log-ins from `start` until `end` (monotonic nanoseconds), on during the first
    /// `period` and every other one after it; each log-in is its own task, so a slow answer
    /// never holds back the next.
    func run(usernames: [String], from start: UInt64, until end: UInt64, measurements: Measurements) async -> LoginFloodResults {
        let tally = Tally()
        let periodNanoseconds = UInt64(period * 1e9)
        await withTaskGroup(of: Void.self) { group in
            var fired = 0
            var onSince = start
            var firedWhileOn = 0
            while MonotonicClock.nanoseconds() < end {
                let now = MonotonicClock.nanoseconds()
                let on = now >= start && ((now - start) / periodNanoseconds) % 2 == 0
                if on != measurements.loginFloodOn {
                    measurements.setLoginFlood(on: on)
                    if on { (onSince, firedWhileOn) = (now, 0) }
                }
                if on {
                    let due = Int(Double(now - onSince) / 1e9 * rate) + 1
                    while firedWhileOn < due {
                        let username = usernames[fired % usernames.count]
                        let endpoint = endpoints[fired % endpoints.count]
                        fired += 1
                        firedWhileOn += 1
                        group.addTask { tally.record(await logIn(username, at: endpoint)) }
                    }
                }
                try? await Task.sleep(for: .milliseconds(2))
            }
            measurements.setLoginFlood(on: false)
        }
        let split = measurements.locationByLoginFlood()
        return tally.results(rate: rate, period: period, locationWith: split.with, locationWithout: split.without)
    }

    private func logIn(_ username: String, at endpoint: HubEndpoint) async -> (answer: String, microseconds: UInt64?) {
        let sent = MonotonicClock.nanoseconds()
        guard let (status, _) = try? await Self.post(endpoint.base + "/api/log_in/", fields: ["username": username, "password": Self.password]) else {
            return ("error", nil)
        }
        return (String(status), status == 200 ? (MonotonicClock.nanoseconds() - sent) / 1_000 : nil)
    }

    /// A session that opens as many connections as the flood needs (the shared one keeps a few
    /// per host and would queue the log-ins in the generator instead of sending them).
    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 1_024
        configuration.timeoutIntervalForRequest = 15
        return URLSession(configuration: configuration)
    }()

    private static func post(_ url: String, fields: [String: String]) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONEncoder().encode(fields)
        let (body, response) = try await session.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, body)
    }

    /// The log-ins' answers and latencies, from any task.
    private final class Tally: Sendable {
        private struct State {
            var answers: [String: Int] = [:]
            var latency = Latency.emptyHistogram()
        }

        private let state = Mutex(State())

        func record(_ outcome: (answer: String, microseconds: UInt64?)) {
            state.withLock { state in
                state.answers[outcome.answer, default: 0] += 1
                if let microseconds = outcome.microseconds { _ = state.latency.record(min(microseconds, Latency.maxMicroseconds)) }
            }
        }

        func results(rate: Double, period: Double, locationWith: LatencySummary, locationWithout: LatencySummary) -> LoginFloodResults {
            state.withLock { state in
                LoginFloodResults(
                    ratePerS: rate, periodS: period, attempted: state.answers.values.reduce(0, +), answers: state.answers,
                    loginLatencyMs: LatencySummary(state.latency),
                    locationLatencyWithLoginsMs: locationWith, locationLatencyWithoutLoginsMs: locationWithout
                )
            }
        }
    }
}

/// What the log-ins got, and the location latency with and without them.
public struct LoginFloodResults: Codable, Sendable {
    public let ratePerS: Double
    public let periodS: Double
    public let attempted: Int
    /// Answers by status: `200`, `503` (busy), `429` (throttled), anything else, and `error`
    /// for no answer.
    public let answers: [String: Int]
    /// Request → answer of the log-ins that got 200.
    public let loginLatencyMs: LatencySummary
    public let locationLatencyWithLoginsMs: LatencySummary
    public let locationLatencyWithoutLoginsMs: LatencySummary
}
