import Foundation

/// This process's CPU time and resident memory: what the load generator measures of itself, and
/// what a hub's `/metrics` reports (`process_cpu_seconds_total`, `process_resident_memory_bytes`).
public enum ProcessStats {
    /// User plus system CPU time of every thread so far, in seconds (microsecond resolution).
    public static func cpuSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        let who = __rusage_who_t(RUSAGE_SELF.rawValue)
        #else
        let who = RUSAGE_SELF
        #endif
        guard getrusage(who, &usage) == 0 else { return 0 }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Resident set size in bytes: the second field of /proc/self/statm (pages) times the page
    /// size; 0 where there is no /proc.
    public static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
