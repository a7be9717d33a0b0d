import Foundation
import NIOCore

/// The local addresses the generator binds its connections to, round robin. One source address
/// has about 28,000 ephemeral ports (32768–60999) for all its connections to one server; on
/// Linux every 127.x.y.z is local, so spreading over several lifts that limit.
struct SourceAddresses: Sendable {
    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    let addresses: [SocketAddress]

    /// `127.0.0.2-127.0.0.20,127.0.1.1`: addresses and inclusive ranges (within the last octet's block).
    static func expand(_ text: String) throws -> [String] {
        try text.split(separator: ",").flatMap { part -> [String] in
            let ends = part.split(separator: "-").map { $0.trimmingCharacters(in: .whitespaces) }
            guard ends.count == 2 else { return [String(part).trimmingCharacters(in: .whitespaces)] }
            let first = ends[0].split(separator: ".")
            let last = ends[1].split(separator: ".")
            guard first.count == 4, last.count == 4, first.dropLast() == last.dropLast(), let from = Int(first[3]), let to = Int(last[3]),
                from <= to, to <= 255
            else { throw Invalid(description: "\(part) is not a range like 127.0.0.2-127.0.0.20.") }
            return (from...to).map { first.dropLast().joined(separator: ".") + ".\($0)" }
        }
    }

    init(_ addresses: [String]) throws {
        self.addresses = try addresses.map { address in
            do {
                return try SocketAddress(ipAddress: address, port: 0)
            } catch {
                throw Invalid(description: "\(address) is not an IP address.")
            }
        }
    }

    /// The source address of connection number `index`; nil lets the kernel choose.
    func address(for index: Int) -> SocketAddress? {
        addresses.isEmpty ? nil : addresses[index % addresses.count]
    }
}
