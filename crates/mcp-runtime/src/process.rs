//! The process's own resource use from /proc (Linux): what `process_*` metrics report. The CI
//! side reads a server's process tree with the same parser.

/// The fields of /proc/PID/stat the runtime reads.
pub struct ProcStat {
    /// The parent's process id.
    pub ppid: i32,
    /// The process group.
    pub pgid: i32,
    /// User and system CPU, in clock ticks.
    pub ticks: u64,
    /// The same, of children waited for.
    pub child_ticks: u64,
    /// Threads.
    pub threads: u64,
    /// Resident memory, in pages.
    pub rss_pages: u64,
}

/// Parses /proc/PID/stat. The command name (field 2) may contain spaces and parentheses, so
/// the fields are counted from its closing parenthesis.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After the name: state(0) ppid(1) pgrp(2) … utime(11) stime(12) cutime(13) cstime(14) …
    // num_threads(17) … rss(21).
    let n = |i: usize| f.get(i)?.parse::<i64>().ok();
    Some(ProcStat {
        ppid: n(1)? as i32,
        pgid: n(2)? as i32,
        ticks: (n(11)? + n(12)?) as u64,
        child_ticks: (n(13)? + n(14)?).max(0) as u64,
        threads: n(17)? as u64,
        rss_pages: n(21)?.max(0) as u64,
    })
}

/// The units /proc counts in, from sysconf.
pub struct Units {
    /// Clock ticks per second (CPU times).
    pub ticks_per_s: f64,
    /// Bytes per page (resident memory).
    pub page_bytes: u64,
}

/// The units of this machine.
pub fn units() -> Units {
    use nix::unistd::{SysconfVar, sysconf};
    Units {
        ticks_per_s: sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64,
        page_bytes: sysconf(SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096) as u64,
    }
}

/// This process now.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ProcessStats {
    /// Resident memory.
    pub resident_memory_bytes: u64,
    /// User and system CPU so far.
    pub cpu_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Threads.
    pub threads: u64,
}

/// Reads /proc/self; `None` where there is no /proc.
pub fn own() -> Option<ProcessStats> {
    let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let u = units();
    Some(ProcessStats {
        resident_memory_bytes: stat.rss_pages * u.page_bytes,
        cpu_seconds: stat.ticks as f64 / u.ticks_per_s,
        open_fds: std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0),
        threads: stat.threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_awkward_names_parse() {
        let line = "4242 (my (odd) server) S 4200 4242 4242 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 9 0 \
                    1234 1000000 2560 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.ppid, s.pgid), (4200, 4242));
        assert_eq!((s.ticks, s.child_ticks, s.threads, s.rss_pages), (200, 10, 9, 2560));
    }

    #[test]
    fn this_process_has_memory_threads_and_descriptors() {
        let s = own().expect("linux has /proc");
        assert!(s.resident_memory_bytes > 1 << 20, "{s:?}");
        assert!(s.threads >= 1 && s.open_fds >= 3, "{s:?}");
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(own().unwrap().open_fds > s.open_fds, "an open file counts");
        drop(f);
    }
}
