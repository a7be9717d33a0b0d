import Foundation
import Synchronization

/// Trip ids from the seed: the same run makes the same ids in the same order.
final class IDSource: Sendable {
    let random: Mutex<SimRandom>

    init(seed: UInt64) {
        random = Mutex(SimRandom(seed: seed ^ 0x5EED_1D5))
    }

    func next() -> UUID {
        random.withLock { random in
            let high = random.next()
            let low = random.next()
            return withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { bytes in
                UUID(uuid: bytes.load(as: uuid_t.self))
            }
        }
    }
}
