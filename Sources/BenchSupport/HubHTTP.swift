import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The few plain HTTP calls the benchmarks make to a hub (readiness, sign-up, log-in, metrics,
/// bench users).
public enum HubHTTP {
    /// The hub answered with another status than the call needs.
    public struct UnexpectedStatus: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// The status of `GET url`, or nil when nothing answered.
    public static func status(of url: String) async -> Int? {
        try? await get(url).status
    }

    /// `GET url`: the status and the body.
    public static func get(_ url: String) async throws -> (status: Int, body: Data) {
        let (body, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, body)
    }

    /// `POST url` with `fields` as a JSON object; returns the body, or throws unless the status is `expected`.
    public static func post(_ url: String, json fields: [String: String], expecting expected: Int) async throws -> Data {
        try await post(url, json: try JSONEncoder().encode(fields), expecting: expected)
    }

    /// `POST url` with a JSON body; returns the answer's body, or throws unless the status is `expected`.
    public static func post(_ url: String, json: Data, expecting expected: Int) async throws -> Data {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = json
        let (body, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == expected else {
            throw UnexpectedStatus(
                description: "POST \(url) answered \(status), not \(expected): \(String(decoding: body.prefix(500), as: UTF8.self))"
            )
        }
        return body
    }
}
