import Foundation
import Hub
import Testing

@testable import Web
import TestSupport

@Suite("Outbound queue: bounded, ordered, locations coalesced", MachineLoad.shared)
struct OutboundQueueTests {
    static let trips = (0..<3).map { _ in UUID() }

    static func state(_ trip: UUID, seq: Int64) -> Outbound {
        let value = Trip(
            id: trip, created: Timestamp(microseconds: 0), updated: Timestamp(microseconds: 0), pickUpAddress: "A",
            dropOffAddress: "B", status: .started, riderID: 1, driverID: 2, seq: seq
        )
        return .event(.trip(TripView(trip: value, rider: nil, driver: nil)))
    }

    static func location(_ trip: UUID, seq: Int64) -> Outbound {
        .event(.location(TripLocation(tripID: trip, driverID: 2, fix: LocationFix(point: GeoPoint(lat: 0, lng: 0), timestamp: Timestamp(microseconds: 0)), seq: seq)))
    }

    static func drain(_ queue: OutboundQueue) -> [HubEvent] {
        var events: [HubEvent] = []
        while case .item(let item) = queue.next() {
            if case .event(let event) = item { events.append(event) }
        }
        return events
    }

    @Test("a waiting location is replaced by the newer one, unless a state change came between")
    func coalescing() {
        let queue = OutboundQueue(limit: 10)
        let (a, b) = (Self.trips[0], Self.trips[1])
        for item in [
            Self.location(a, seq: 1), Self.location(b, seq: 1), Self.location(a, seq: 2), Self.state(a, seq: 3),
            Self.location(a, seq: 4), Self.location(a, seq: 5), Self.location(b, seq: 2),
        ] {
            #expect(queue.enqueue(item) != .refused)
        }
        #expect(Self.drain(queue).map { "\($0.tripID == a ? "a" : "b")\($0.seq)" } == ["a2", "b2", "a3", "a5"])
        // Once taken, a location is no longer replaceable: the next one queues anew.
        #expect(queue.enqueue(Self.location(a, seq: 6)) != .refused)
        #expect(Self.drain(queue).map(\.seq) == [6])
    }

    @Test("a location sealed by a state change does not count against the bound; replayed locations are all kept")
    func sealedAndReplayed() {
        let queue = OutboundQueue(limit: 2)
        let trip = Self.trips[0]
        #expect(queue.enqueue(Self.location(trip, seq: 1)) != .refused)
        #expect(queue.enqueue(Self.state(trip, seq: 2)) != .refused)
        #expect(queue.next() == .item(Self.location(trip, seq: 1)))
        #expect(queue.enqueue(.text("second ordered item")) != .refused)
        #expect(queue.enqueue(.text("third")) == .refused)
        #expect(Self.drain(queue).map(\.seq) == [2])

        let replay = OutboundQueue(limit: 10)
        for seq in 1...3 { #expect(replay.enqueue(Self.location(trip, seq: Int64(seq)), coalescing: false) != .refused) }
        #expect(replay.enqueue(Self.location(trip, seq: 4)) != .refused)
        #expect(replay.enqueue(Self.location(trip, seq: 5)) != .refused)
        #expect(Self.drain(replay).map(\.seq) == [1, 2, 3, 5])
    }

    @Test("the first enqueue into an idle queue starts a drain, and only one drain runs at a time")
    func drainHandOff() {
        let queue = OutboundQueue(limit: 10)
        #expect(queue.enqueue(.text("a")) == .startDrain)
        #expect(queue.enqueue(.text("b")) == .queued)
        #expect(queue.next() == .item(.text("a")))
        #expect(queue.next() == .item(.text("b")))
        #expect(queue.next() == .idle)
        #expect(queue.enqueue(.text("c")) == .startDrain)
        #expect(queue.next() == .item(.text("c")))
        #expect(queue.next() == .idle)
        // Finishing an idle queue asks for one more drain, which sees the end once.
        #expect(queue.finish())
        #expect(queue.next() == .finished)
        #expect(queue.enqueue(.text("late")) == .refused)
    }

    @Test("state changes and replies are bounded; locations do not count against the bound")
    func bound() {
        let queue = OutboundQueue(limit: 3)
        for seq in 1...3 { #expect(queue.enqueue(Self.state(Self.trips[0], seq: Int64(seq))) != .refused) }
        #expect(queue.enqueue(.text("one too many")) == .refused)
        #expect(queue.enqueue(Self.location(Self.trips[1], seq: 1)) != .refused)
        #expect(queue.count == 4)
        _ = queue.next()
        #expect(queue.enqueue(.text("room again")) != .refused)
        #expect(!queue.finish(), "a drain is running")
        #expect(queue.next() == .finished)
        #expect(queue.enqueue(.text("after the end")) == .refused)
    }

    @Test("any interleaving: per trip seq ascends, no state change is lost, the latest location arrives, memory is bounded")
    func randomInterleavings() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let queue = OutboundQueue(limit: 1_000)
            var seq: [UUID: Int64] = [:]
            var states: [UUID: [Int64]] = [:]
            var lastLocation: [UUID: Int64] = [:]
            var taken: [HubEvent] = []
            var longest = 0
            for _ in 0..<300 {
                let trip = Self.trips.randomElement(using: &generator)!
                seq[trip, default: 0] += 1
                let next = seq[trip]!
                if Int.random(in: 0..<10, using: &generator) == 0 {
                    states[trip, default: []].append(next)
                    #expect(queue.enqueue(Self.state(trip, seq: next)) != .refused)
                } else {
                    lastLocation[trip] = next
                    #expect(queue.enqueue(Self.location(trip, seq: next)) != .refused)
                }
                longest = max(longest, queue.count)
                if Int.random(in: 0..<8, using: &generator) == 0, case .item(.event(let event)) = queue.next() {
                    taken.append(event)
                }
            }
            taken += Self.drain(queue)
            for trip in Self.trips {
                let events = taken.filter { $0.tripID == trip }
                #expect(events.map(\.seq) == events.map(\.seq).sorted())
                #expect(events.filter { if case .trip = $0 { true } else { false } }.map(\.seq) == states[trip, default: []])
                if let last = lastLocation[trip], last > (states[trip]?.last ?? 0) {
                    #expect(events.last?.seq == last)
                }
            }
            // Waiting at most: the state changes, one location per trip, and one sealed location per state change.
            let stateCount = states.values.map(\.count).reduce(0, +)
            #expect(longest <= 2 * stateCount + Self.trips.count)
        }
    }
}

@Suite("Wire encoding fast path agrees with the encoder", MachineLoad.shared)
struct WireFastPathTests {
    @Test("trip.location written by hand is the JSON the encoder writes, for any fix")
    func locationEncoding() throws {
        var generator = SystemRandomNumberGenerator()
        for n in 0..<2_000 {
            let optional = { (value: Double) -> Double? in Bool.random(using: &generator) ? value : nil }
            let fix = LocationFix(
                point: GeoPoint(lat: .random(in: -90...90, using: &generator), lng: n == 0 ? -180 : .random(in: -180...180, using: &generator)),
                heading: optional(.random(in: 0..<360, using: &generator)),
                speed: optional(n == 1 ? 1e-7 : .random(in: 0...100, using: &generator)),
                accuracy: optional(n == 2 ? 100_000 : .random(in: 0...100, using: &generator)),
                timestamp: Timestamp(microseconds: .random(in: 0...4_000_000_000_000_000, using: &generator))
            )
            let location = TripLocation(tripID: UUID(), driverID: .random(in: 1...1_000_000, using: &generator), fix: fix, seq: .random(in: 1...Int64.max, using: &generator))
            let fast = OutboundEncoding.encode(location)
            let generic = OutboundEncoding.encodeWithEncoder(location)
            #expect(JSONReader.parse(fast) != nil)
            #expect(JSONReader.parse(fast) == JSONReader.parse(generic), "\(fast)")
        }
    }
}

@Suite("Trip frame cache", MachineLoad.shared)
struct TripFrameCacheTests {
    @Test("a trip state is encoded once per seq, and the cache keeps only the newest entries")
    func encodesOncePerSeq() {
        let cache = TripFrameCache(capacity: 3)
        let trip = UUID()
        var encoded = 0
        func frame(_ seq: Int64) -> String {
            cache.frame(for: .init(tripID: trip, seq: seq)) {
                encoded += 1
                return "frame \(seq)"
            }
        }
        #expect(frame(1) == "frame 1" && frame(1) == "frame 1")
        #expect(encoded == 1)
        #expect(frame(2) == "frame 2" && frame(3) == "frame 3" && frame(4) == "frame 4")
        #expect(cache.count == 3)
        #expect(frame(1) == "frame 1")
        #expect(encoded == 5, "seq 1 was evicted by the newer ones and encoded again")
    }
}
