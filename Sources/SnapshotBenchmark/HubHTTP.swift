import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The few plain HTTP calls the benchmark makes to its hub (readiness, sign-up, log-in).
enum HubHTTP {
    struct UnexpectedStatus: Error, CustomStringConvertible {
        let description: String
    }

    /// The status of `GET url`, or nil when nothing answered.
    static func status(of url: String) async -> Int? {
        guard let (_, response) = try? await URLSession.shared.data(from: URL(string: url)!) else { return nil }
        return (response as? HTTPURLResponse)?.statusCode
    }

    /// `POST url` with `fields` as a JSON object; returns the body, or throws unless the status is `expected`.
    static func post(_ url: String, json fields: [String: String], expecting expected: Int) async throws -> Data {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONEncoder().encode(fields)
        let (body, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == expected else {
            throw UnexpectedStatus(
                description: "POST \(url) answered \(status), not \(expected): \(String(decoding: body, as: UTF8.self))"
            )
        }
        return body
    }
}
