//! Resolution of a checked config into the [`Plan`] the rest of the program consumes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

impl Config {
    /// `baseline:` with a `file` store's path anchored at the config's directory.
    pub fn baseline_in(&self, config_dir: &Path) -> Option<BaselineConfig> {
        self.baseline.clone().map(|b| match b {
            BaselineConfig::File { path } => BaselineConfig::File { path: config_dir.join(path) },
            other => other,
        })
    }

    /// Resolves the config into the plan the run consumes. `self_exe` replaces `@self`;
    /// `config_dir` anchors a relative `server.cwd`.
    pub fn into_plan(self, source: String, self_exe: &Path, config_dir: &Path) -> Plan {
        let config_hash = self.hash();
        let baseline = self.baseline_in(config_dir);
        let mut command = self.server.command;
        if command.first().is_some_and(|p| p == SELF_PROGRAM) {
            command[0] = self_exe.display().to_string();
        }
        let cwd = self.server.cwd.map(|c| config_dir.join(c));
        let thresholds = threshold::parse_all(&self.thresholds).expect("validated when loaded");
        Plan {
            source,
            server: ServerPlan {
                build: self.server.build,
                command,
                transport: self.server.transport,
                url: self.server.url,
                env: self.server.env,
                cwd,
                startup_timeout: self.server.startup_timeout.0,
                shutdown_timeout: self.server.shutdown_timeout.0,
                metrics_url: self.server.metrics_url,
                headers: self.server.headers,
                ca_file: self.server.ca_file.map(|f| config_dir.join(f)),
                era: self.server.era,
                upstreams: self.server.upstreams,
            },
            workload: self.workload,
            compare: self.compare,
            baseline,
            thresholds,
            live_detail: false,
            config_hash,
            shard: None,
            start: None,
        }
    }

    /// SHA-256 of the config as parsed (its canonical JSON, with any arguments file read in),
    /// hex: the same for every shard of a run whatever the file's layout or comments, and
    /// different when anything that changes the measurement does.
    pub fn hash(&self) -> String {
        use sha2::Digest as _;
        let canonical = serde_json::to_vec(self).expect("a config serializes");
        sha2::Sha256::digest(&canonical).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A resolved config: what to build, launch and drive.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where the config came from (a path, or the embedded default), for reports.
    pub source: String,
    pub server: ServerPlan,
    pub workload: WorkloadConfig,
    pub compare: CompareConfig,
    /// With a `file` store's path made absolute (against the config's directory).
    pub baseline: Option<BaselineConfig>,
    pub thresholds: Vec<Threshold>,
    /// Live progress carries each operation's figures (set by `run --live-metrics`; not from
    /// the config: it changes what is watched, not what is measured).
    pub live_detail: bool,
    /// [`Config::hash`] of the config this plan was made from.
    pub config_hash: String,
    /// `run --shard K/N`: this process drives shard K's share of every scenario.
    pub shard: Option<Shard>,
    /// `run --start-at`: measured windows on a common timetable.
    pub start: Option<CommonStart>,
}

#[derive(Debug, Clone)]
pub struct ServerPlan {
    pub build: Option<String>,
    /// Program and arguments; empty when the server at `url` is already running.
    pub command: Vec<String>,
    pub transport: Transport,
    pub url: Option<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub startup_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub metrics_url: Option<String>,
    /// Sent with every request over HTTP (values may name environment variables).
    pub headers: BTreeMap<String, super::server::Header>,
    /// Trusted for an `https://` URL besides the system's roots (anchored at the config's
    /// directory).
    pub ca_file: Option<PathBuf>,
    pub era: super::Era,
    /// Simulators to start per repetition; `@upstream:NAME` marks where their addresses go.
    pub upstreams: BTreeMap<String, UpstreamSim>,
}

impl Plan {
    /// The same plan for a copy of the repository at `to` (a worktree of another commit) that
    /// is at `from` here: the working directory of the build and the server (`cwd` when none
    /// is configured), and command arguments and environment values that are absolute paths
    /// inside the repository, point into the copy. Workload, thresholds and comparison
    /// settings stay.
    pub fn rebased(&self, from: &Path, to: &Path, cwd: &Path) -> Plan {
        let rebase = |path: &Path| {
            let absolute = if path.is_absolute() { path.to_path_buf() } else { cwd.join(path) };
            absolute.strip_prefix(from).ok().map(|inside| to.join(inside))
        };
        let rebase_text = |text: &String| {
            let p = Path::new(text);
            match p.is_absolute().then(|| rebase(p)).flatten() {
                Some(inside) => inside.display().to_string(),
                None => text.clone(),
            }
        };
        let mut plan = self.clone();
        let here = self.server.cwd.clone().unwrap_or_else(|| cwd.to_path_buf());
        plan.server.cwd = Some(rebase(&here).unwrap_or(here));
        plan.server.command = self.server.command.iter().map(rebase_text).collect();
        plan.server.env = self.server.env.iter().map(|(k, v)| (k.clone(), rebase_text(v))).collect();
        plan
    }
}

impl fmt::Display for ServerPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.command.is_empty(), &self.url) {
            (true, Some(url)) => f.write_str(url),
            _ => f.write_str(&self.command.join(" ")),
        }
    }
}

impl Plan {
    /// The embedded default, resolved against this executable.
    pub fn embedded_default(self_exe: &Path) -> Plan {
        Config::embedded_default().into_plan(DEFAULT_SOURCE.to_string(), self_exe, Path::new("."))
    }
}
