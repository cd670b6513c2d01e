//! The environment fingerprint stored with every results file, so that a comparison can tell
//! whether two runs were measured on comparable machines.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub os: String,
    pub kernel: Option<String>,
    pub cpu_model: Option<String>,
    pub cores: usize,
    pub memory_bytes: Option<u64>,
}

impl Environment {
    /// Reads the fingerprint of this machine (from /proc on Linux; what std knows elsewhere).
    pub fn probe() -> Environment {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Environment {
            os: std::env::consts::OS.to_string(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
            cpu_model: cpu_model(&cpuinfo),
            cores: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            memory_bytes: mem_total(&meminfo),
        }
    }

    /// What a run's speed depends on, as one line: the CPU model, the cores and the OS. Runs of
    /// two classes are not measured alike: `compare` makes their verdict advisory, `history`
    /// keeps their series apart.
    pub fn class(&self) -> String {
        format!("{} × {} cores, {}", self.cpu_model.as_deref().unwrap_or("unknown CPU"), self.cores, self.os)
    }
}

/// The commit checked out in the current directory, when it is inside a git repository.
pub fn git_head() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !sha.is_empty()).then_some(sha)
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let cpu = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpu).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(mem_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"), Some(16384 * 1024));
        assert_eq!(mem_total(""), None);
    }

    #[test]
    fn probe_reports_at_least_one_core() {
        let env = Environment::probe();
        assert!(env.cores >= 1);
        assert!(!env.os.is_empty());
    }
}
