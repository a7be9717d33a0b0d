import Foundation
import Testing

public struct NotAJSONObject: Error {
    public let text: String
}

public func parseJSONObject(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw NotAJSONObject(text: text)
    }
    return object
}

public func parseJSONArray(_ text: String) throws -> [[String: Any]] {
    guard let array = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else {
        throw NotAJSONObject(text: text)
    }
    return array
}

public func jsonText(_ object: Any) -> String {
    String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
}

/// The payload of a JWT, decoded from base64url.
public func jwtPayload(_ token: String) throws -> [String: Any] {
    let parts = token.split(separator: ".")
    #expect(parts.count == 3)
    var base64 = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    let data = try #require(Data(base64Encoded: base64))
    return try parseJSONObject(String(decoding: data, as: UTF8.self))
}
