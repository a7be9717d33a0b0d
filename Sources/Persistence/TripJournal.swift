import DedicatedThread
import Foundation
import Hub

/// The write-ahead journal of a single hub: every trip change and sign-up is appended to a file
/// in the data folder and `fdatasync`ed before anyone hears of it, so a crash (even a power
/// loss) never loses what the hub acknowledged, whatever the snapshot store is doing.
///
/// The journal only has to hold what the store does not have yet. It is a run of segment files
/// (`journal/0000000001.log`, ...): each snapshot first closes the current segment (`rotate`),
/// then takes the hub's pending changes and writes them; once that write succeeded, the closed
/// segments are deleted (`dropSegments`). That is safe because a change is recorded for the
/// snapshot before it is appended here (see `TripActor.commit`): whatever a closed segment holds
/// was pending before the drain that followed its closing. While the store fails (PostgreSQL
/// down), segments simply pile up, and go once a snapshot gets through.
///
/// On start, `replay` reads every segment in order; the hub merges the changes into the store
/// (`JournalRecovery`) before it loads its state.
///
/// Record format: a 4-byte little-endian length, the 8-byte FNV-1a hash of the payload, and the
/// payload, a `DurableChange` as JSON. A record cut short by a crash (or failing its hash) ends
/// its segment's replay: it was never acknowledged, since its `fdatasync` never returned.
///
/// All file work runs on a thread of its own (`ThreadExecutor`), never on the event loops or the
/// cooperative pool; the server runs its group commit loop there too (`taskExecutor`).
public actor TripJournal {
    public nonisolated let directory: URL
    private nonisolated let executor = ThreadExecutor(name: "journal", niceness: 0)
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    /// The journal's thread as a task executor: a commit loop started there calls `append`
    /// without leaving the thread.
    public nonisolated var taskExecutor: any TaskExecutor { executor }

    private var segment: UInt64
    private var file: Int32 = -1
    private var segmentBytes = 0
    private let encoder = JSONEncoder()

    /// Opens the journal in `directory/journal` (created if missing); new records go to a new
    /// segment after every existing one, so `replay` still sees the old ones until they are dropped.
    public init(directory: String) throws {
        let folder = URL(fileURLWithPath: directory).appendingPathComponent("journal", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        self.directory = folder
        self.segment = (try Self.segments(in: folder).last ?? 0) + 1
    }

    deinit {
        if file >= 0 { close(file) }
        executor.shutdown()
    }

    /// Appends a batch and makes it durable (`fdatasync`) before returning.
    public func append(_ batch: [DurableChange]) throws {
        var bytes: [UInt8] = []
        for change in batch {
            let payload = try encoder.encode(change)
            Self.appendRecord(payload, to: &bytes)
        }
        try openIfNeeded()
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(file, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw JournalError.io("write", errno)
                }
                offset += written
            }
        }
        guard fdatasync(file) == 0 else { throw JournalError.io("fdatasync", errno) }
        segmentBytes += bytes.count
    }

    /// Closes the current segment, so the next append starts a new one; returns the number of the
    /// newest closed segment (0: none). Call it right before draining the changes for a snapshot.
    public func rotate() -> UInt64 {
        guard file >= 0, segmentBytes > 0 else { return segment - 1 }
        close(file)
        file = -1
        segmentBytes = 0
        segment += 1
        return segment - 1
    }

    /// Deletes the closed segments up to `number`: a snapshot written after `rotate` returned it
    /// holds everything they hold.
    public func dropSegments(through number: UInt64) throws {
        for existing in try Self.segments(in: directory) where existing <= number && existing < segment {
            try FileManager.default.removeItem(at: Self.url(of: existing, in: directory))
        }
    }

    /// Every change in the journal's segments, oldest first, and the newest segment read.
    public func replay() throws -> (changes: [DurableChange], through: UInt64) {
        let decoder = JSONDecoder()
        var changes: [DurableChange] = []
        let numbers = try Self.segments(in: directory).filter { $0 < segment }
        for number in numbers {
            let data = try Data(contentsOf: Self.url(of: number, in: directory))
            for payload in Self.records(in: data) {
                // A record whose hash matched but does not decode was written by another version:
                // refuse to start rather than lose it silently.
                changes.append(try decoder.decode(DurableChange.self, from: payload))
            }
        }
        return (changes, numbers.last ?? 0)
    }

    private func openIfNeeded() throws {
        guard file < 0 else { return }
        let path = Self.url(of: segment, in: directory).path
        let opened = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard opened >= 0 else { throw JournalError.io("open \(path)", errno) }
        file = opened
        // The new file's name must survive a power loss too.
        let folder = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            defer { close(folder) }
            guard fsync(folder) == 0 else { throw JournalError.io("fsync \(directory.path)", errno) }
        }
    }

    // MARK: - Format

    static func appendRecord(_ payload: Data, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(payload.count).littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: fnv1a(payload).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: payload)
    }

    /// The intact records of one segment, in order, up to the first cut-short or damaged one.
    static func records(in data: Data) -> [Data] {
        var records: [Data] = []
        var offset = data.startIndex
        let header = 12
        while data.endIndex - offset >= header {
            let length = Int(data[offset..<offset + 4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian)
            let hash = data[offset + 4..<offset + 12].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
            let start = offset + header
            guard length <= data.endIndex - start else { break }
            let payload = data[start..<start + length]
            guard fnv1a(payload) == hash else { break }
            records.append(Data(payload))
            offset = start + length
        }
        return records
    }

    static func fnv1a(_ bytes: Data) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }

    static func url(of segment: UInt64, in directory: URL) -> URL {
        let digits = String(segment)
        return directory.appendingPathComponent(String(repeating: "0", count: max(0, 10 - digits.count)) + digits + ".log")
    }

    /// The numbers of the segment files in `directory`, ascending; other files are ignored.
    static func segments(in directory: URL) throws -> [UInt64] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .compactMap { name in name.hasSuffix(".log") ? UInt64(name.dropLast(4)) : nil }
            .sorted()
    }
}

/// Why the journal could not be written or read.
public enum JournalError: Error, CustomStringConvertible {
    case io(String, Int32)

    public var description: String {
        switch self {
        case .io(let call, let code): "\(call) failed: \(String(cString: strerror(code)))"
        }
    }
}
