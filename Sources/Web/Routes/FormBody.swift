import Foundation
import Hummingbird
import MultipartKit

/// The fields of a request body sent as JSON, `application/x-www-form-urlencoded` or
/// `multipart/form-data`, the three ways the reference's clients post forms.
struct FormBody {
    /// An uploaded file.
    struct File {
        let bytes: ByteBuffer
    }

    var fields: [String: String] = [:]
    var files: [String: File] = [:]
    /// Fields whose value has the wrong JSON type, reported as field errors.
    var typeErrors: [String: [String]] = [:]

    static func read(_ request: Request, limit: Int) async throws -> FormBody {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw APIError.detail(.contentTooLarge, "Request body larger than \(limit) bytes.")
        }
        let contentType = request.headers[.contentType] ?? ""
        if contentType.lowercased().hasPrefix("multipart/form-data") {
            return try multipart(buffer, contentType: contentType)
        }
        if contentType.lowercased().hasPrefix("application/x-www-form-urlencoded") {
            return urlEncoded(buffer)
        }
        return try json(buffer)
    }

    private static func json(_ buffer: ByteBuffer) throws -> FormBody {
        guard buffer.readableBytes > 0 else { return FormBody() }
        guard let value = buffer.withUnsafeReadableBytes({ JSONReader.parse($0) }),
            let object = value.objectValue
        else {
            throw APIError.detail(.badRequest, "JSON parse error - the body must be a JSON object.")
        }
        var body = FormBody()
        for (key, value) in object.uniqueMembers {
            switch value {
            case .string(let string): body.fields[key] = string
            case .null: continue
            default: body.typeErrors[key] = ["Not a valid string."]
            }
        }
        return body
    }

    private static func urlEncoded(_ buffer: ByteBuffer) -> FormBody {
        var body = FormBody()
        var components = URLComponents()
        components.percentEncodedQuery = String(buffer: buffer).replacingOccurrences(of: "+", with: "%20")
        for item in components.queryItems ?? [] {
            body.fields[item.name] = item.value ?? ""
        }
        return body
    }

    private static func multipart(_ buffer: ByteBuffer, contentType: String) throws -> FormBody {
        guard let boundary = parameter("boundary", in: contentType) else {
            throw APIError.detail(.badRequest, "Multipart form parse error - missing boundary.")
        }
        var body = FormBody()
        var headers: [(String, String)] = []
        var content = ByteBuffer()
        let parser = MultipartParser(boundary: boundary)
        parser.onHeader = { name, value in headers.append((name, value)) }
        parser.onBody = { chunk in content.writeBuffer(&chunk) }
        parser.onPartComplete = {
            let disposition = headers.first { $0.0.lowercased() == "content-disposition" }?.1 ?? ""
            if let name = parameter("name", in: disposition) {
                if parameter("filename", in: disposition) != nil {
                    body.files[name] = File(bytes: content)
                } else {
                    body.fields[name] = String(buffer: content)
                }
            }
            headers = []
            content = ByteBuffer()
        }
        do {
            try parser.execute(buffer)
        } catch {
            throw APIError.detail(.badRequest, "Multipart form parse error - the body is not valid multipart data.")
        }
        return body
    }

    /// A `key=value` parameter of a header such as `form-data; name="photo"; filename="a.png"`.
    private static func parameter(_ key: String, in header: String) -> String? {
        for part in header.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == key else { continue }
            var value = pair[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            return value
        }
        return nil
    }
}
