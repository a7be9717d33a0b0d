import Foundation

extension UUID {
    /// The id as the wire and the stores spell it: lowercase `8-4-4-4-12` hex. Written directly
    /// from the bytes: Foundation's `uuidString` formats with `snprintf` and `lowercased()` copies
    /// again, and every `trip.location` frame carries a trip id.
    public var lowercasedText: String {
        let hex: StaticString = "0123456789abcdef"
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                var position = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    text[position] = hex.utf8Start[Int(byte >> 4)]
                    text[position + 1] = hex.utf8Start[Int(byte & 0x0F)]
                    position += 2
                }
                return position
            }
        }
    }
}
