//! The results file: a versioned, documented contract (`mcp-perfcheck/results/v1`).
//!
//! A results file holds everything a later `compare` or `report` needs, and nothing that must
//! be recomputed from raw samples: per scenario, per repetition, per operation, the counts,
//! errors by kind, throughput, latency percentiles and the full HdrHistogram (V2+DEFLATE,
//! base64) so that percentiles can be merged correctly across repetitions. Reading a file and
//! writing it back gives the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub use crate::measure::LatencyBasis;
use crate::measure::{
    Environment, ErrorKind, LatencyHistogram, LatencySummary, Quantity, ResourceSummary, ServerMetrics,
};

mod merge;

pub use merge::{MergeError, Merged, ShardFile, merge};

/// The schema identifier written into every results file.
pub const SCHEMA: &str = "mcp-perfcheck/results/v1";

/// A repetition's series has at most this many points: its buckets widen beyond 120 s.
pub const SERIES_MAX_POINTS: u64 = 120;

/// The first `chars` characters of `text`, cut on a character boundary: commit ids and dates
/// shortened for display come from files anyone may have written.
pub fn prefix(text: &str, chars: usize) -> &str {
    text.char_indices().nth(chars).map_or(text, |(at, _)| &text[..at])
}

/// A commit id as reports show it: its first 12 characters.
pub fn short_commit(sha: &str) -> &str {
    prefix(sha, 12)
}

/// The width of a series' buckets, in whole seconds, for a measured window of `duration_s`.
pub fn series_bucket_s(duration_s: u64) -> u64 {
    duration_s.div_ceil(SERIES_MAX_POINTS).max(1)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Version of mcp-perfcheck that wrote the file.
    pub tool_version: String,
    /// When the run started, RFC 3339, UTC.
    pub timestamp: String,
    /// `git rev-parse HEAD` where the run was started, when inside a repository.
    pub git_sha: Option<String>,
    /// The config file the run used, or `<embedded default config>`.
    pub config_source: String,
    pub environment: Environment,
    /// The server as it introduced itself in `initialize` (absent if it never did).
    pub server: Option<ServerIdentity>,
    pub scenarios: Vec<ScenarioResult>,
    /// The configured thresholds and whether each held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdOutcome>,
    /// Set when the run did not complete: what went wrong; everything measured before is kept.
    pub failure: Option<RunFailure>,
    /// A same-runner A/B (`run --base-ref`): the base side, measured interleaved with this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_run: Option<Box<Results>>,
    /// A same-runner A/B: both sides carry the same id, and each repetition of one ran back to
    /// back with the repetition of the same index of the other, so `compare` tests them as
    /// pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairing: Option<String>,
    /// An A/B run allowed extra looks (`compare.extend`): the repetitions at each look, which
    /// `compare` needs to spend α across them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looks: Option<Looks>,
    /// One shard of a run split over several load generators (`run --shard K/N`), or the
    /// merge of all of them (`mcp-perfcheck merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding: Option<Sharding>,
}

/// Which share of a sharded run a file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sharding {
    /// This file's shard, from 1; absent in a merged file, which holds every shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// How many shards the run was split into.
    pub count: u32,
    /// SHA-256 of the config every shard ran, as parsed (the same whatever its layout).
    pub config_hash: String,
    /// The common start the shards were given (RFC 3339), when they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// A merged file: the greatest difference, over its repetitions, between the earliest and
    /// the latest shard's start of one measured window, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew_ms: Option<u64>,
}

/// The looks an A/B run took at its data. At each look the comparison so far decided whether
/// more repetitions were needed; the significance level of each look is a share of α (see
/// `stats::look_alpha`), so the looks together keep the false-alarm rate at α.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Looks {
    /// Repetitions per side at each look so far, cumulative (e.g. `[10, 15]`).
    pub repetitions: Vec<u32>,
    /// The most repetitions the looks could reach (first look plus every extra look): the
    /// denominator of each look's information fraction.
    pub max_repetitions: u32,
    /// Why no further look was taken; absent while the run is under way or when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<LooksEnded>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LooksEnded {
    /// Every metric was decided: a regression, or nothing left inconclusive.
    Decided,
    /// The configured number of looks was reached.
    MaxLooks,
    /// Another look was not expected to fit in the time budget.
    Budget,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdOutcome {
    /// The selector as written, e.g. `tools/call{tool:lookup}`.
    pub key: String,
    /// The expression as written, e.g. `p(95)<50ms`.
    pub expression: String,
    /// The measured value in the metric's base unit (µs, a fraction, bytes, per second, a
    /// count); absent when nothing measured matched the selector, which fails the threshold.
    pub observed: Option<f64>,
    pub quantity: Quantity,
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerIdentity {
    pub name: String,
    pub version: String,
    pub protocol_version: String,
    /// The command line that started it, or the URL of a server that was already running.
    pub command: String,
    /// `stdio` or `http`.
    #[serde(default = "stdio")]
    pub transport: String,
}

fn stdio() -> String {
    "stdio".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    /// `constant-vus`, `constant-arrival-rate` or `iterations`.
    pub executor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    pub warmup_s: f64,
    /// The planned measured window (0 for `iterations`).
    pub duration_s: f64,
    /// One entry per fresh server process; the unit of replication for comparisons.
    /// `spike`, `breakpoint` or `soak` when the scenario is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub repetitions: Vec<RepetitionResult>,
}

/// A fault applied during a repetition: which upstream, what, and when (seconds from the start
/// of the measured window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    pub upstream: String,
    pub kind: String,
    pub start_s: f64,
    pub end_s: f64,
    /// What the fault did (absent in results written before they were measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<FaultFigures>,
}

/// A fault's effect, from the client's calls and the server's `runtime://stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultFigures {
    /// Calls completed while the fault lasted.
    pub calls: u64,
    /// Their share that failed (`None`: no call completed).
    pub error_rate: Option<f64>,
    /// Their share answered but marked degraded (stale, a default, partial).
    pub degraded_share: Option<f64>,
    /// From the fault's start until the upstream's breaker opened (`None`: it did not open, or
    /// the server does not report its breakers).
    pub breaker_opened_after_s: Option<f64>,
    /// From the fault's end until that breaker was closed again (0: closed by then).
    pub breaker_closed_after_s: Option<f64>,
    /// From the fault's end until the breaker was closed and the error rate back to its level
    /// before the fault, to 0.1 s (`None`: not within the measured window).
    pub recovery_s: Option<f64>,
}

/// What a server on the mcp-perfcheck runtime reported about itself over the measured window
/// (its `runtime://stats` resource at the window's start and end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeFigures {
    pub cache_hits: u64,
    /// Served stale (past their fresh time, or through an upstream failure).
    pub cache_stale: u64,
    pub cache_misses: u64,
    /// (hits + stale) / lookups; `None`: no lookups.
    pub cache_hit_ratio: Option<f64>,
    /// Breakers that opened in the window, over all upstreams.
    pub breaker_opens: u64,
    /// Breakers not closed when the window ended, as `upstream: state`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakers_open_at_end: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepetitionResult {
    /// 1-based.
    pub index: u32,
    /// Seconds from the start of the measured window until its last request completed.
    pub measured_s: f64,
    pub operations: Vec<OperationResult>,
    /// Errors that belong to no request: unparseable lines, answers to unknown ids.
    pub unattributed_errors: BTreeMap<ErrorKind, u64>,
    /// Traffic on the connection outside our requests.
    pub connection: ConnectionStats,
    /// How well the load was applied.
    pub load: LoadStats,
    /// The server's whole process tree over the measured window (absent where /proc is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_resources: Option<ResourceSummary>,
    /// What the server's own Prometheus metrics said (with `server.metrics_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<ServerMetrics>,
    /// What the load generator itself spent.
    pub client: ClientCost,
    /// The measured window second by second (wider buckets for long windows), for charts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesPoint>,
    /// A spike scenario's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike: Option<SpikeResult>,
    /// A breakpoint scenario's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakpoint: Option<BreakpointResult>,
    /// The faults applied to simulated upstreams, in seconds from the start of the window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultWindow>,
    /// The server's cache and breakers over the window, when it reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeFigures>,
    /// Set when this repetition ended abnormally (server crashed, interrupted).
    pub failure: Option<String>,
    /// The measured window on the wall clock (absent in files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WallWindow>,
    /// A merged file: what each shard measured of this repetition apart from the histograms
    /// (its window, its sends, the generator's own cost and, with a server of its own, that
    /// server's resources), by shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardPart>,
}

/// A measured window on the wall clock, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WallWindow {
    pub start_unix_ms: u64,
    /// When its last call completed.
    pub end_unix_ms: u64,
    /// With a common start (`run --start-at`): when it was to begin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_start_unix_ms: Option<u64>,
}

impl WallWindow {
    /// How much later than planned the window began (0: on time, or no plan).
    pub fn late_ms(&self) -> u64 {
        self.planned_start_unix_ms.map_or(0, |p| self.start_unix_ms.saturating_sub(p))
    }
}

/// One shard's part of a merged repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPart {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WallWindow>,
    pub load: LoadStats,
    /// That shard's load generator.
    pub client: ClientCost,
    /// The server the shard launched itself (absent when the shards shared one at a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_resources: Option<ResourceSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadStats {
    /// Requests sent in the measured window.
    pub sent: u64,
    /// Open model: sends that left more than 1 ms after their intended time (all in-flight
    /// slots were busy). Their latency still runs from the intended time.
    pub late_sends: u64,
    /// Open model: sends still waiting for a slot when the window closed, never sent.
    pub dropped_sends: u64,
    /// Open model: the configured rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rate_per_s: Option<f64>,
    /// Sends per second: over the sending window in the open model (so it compares with the
    /// target), over the measured time otherwise.
    pub achieved_rate_per_s: f64,
    /// Open model: how long after their intended time requests were sent (µs). The generator's
    /// own timer precision shows here; queueing behind busy slots shows as late sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lag_us: Option<LatencySummary>,
}

/// One bucket of a repetition's time series.
/// A spike phase: the p99 before and during it, and the time to recover after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpikeResult {
    /// When the spike began and ended, seconds into the measured window.
    pub at_s: f64,
    pub end_s: f64,
    pub factor: f64,
    /// Median per-second p99 before the spike, and the worst during it, µs.
    pub baseline_p99_us: u64,
    pub peak_p99_us: u64,
    /// Seconds after the spike until the first clean second closed (errors none, p99 within
    /// 1.5× of the baseline); `None`: not within the window. Resolution: one series bucket.
    pub recovery_s: Option<f64>,
}

/// A breakpoint phase: where the ramp broke a limit, and the last rate that held.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BreakpointResult {
    /// Successful calls per second in the last second that kept every limit.
    pub capacity_per_s: f64,
    /// When the first second broke a limit (`None`: the ramp ended with every limit held, and
    /// the capacity is at least the figure above).
    pub broke_at_s: Option<f64>,
    pub rate_at_break_per_s: Option<f64>,
    pub broken_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// End of the bucket, seconds from the start of the measured window.
    pub t_s: f64,
    pub calls_per_s: f64,
    pub errors: u64,
    /// Latency percentiles of the bucket's successful calls (from the intended send), µs.
    pub p50_us: u64,
    pub p99_us: u64,
    /// The server's RSS at the end of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// The server's CPU use over the bucket (100 = one core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientCost {
    /// CPU time of mcp-perfcheck during the measured window, less the process sampler's: the
    /// load loop's cost.
    pub cpu_seconds: f64,
    pub cpu_us_per_call: f64,
    /// CPU time of the server's process sampler during the window (its own thread; absent in
    /// files written before it was measured apart).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sampler_cpu_seconds: f64,
    /// Peak RSS of mcp-perfcheck so far.
    pub rss_peak_bytes: u64,
    /// Over the whole connection, handshake and warm-up included.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub connections_opened: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionStats {
    /// Notifications the server sent (logging, progress, list changes).
    pub notifications: u64,
    /// Requests the server sent us (`ping` answered, others refused).
    pub server_requests: u64,
    /// Answers that arrived after their request had timed out.
    pub late_responses: u64,
    /// The last line of the server's output that was not JSON-RPC (truncated).
    pub malformed_sample: Option<String>,
    /// Streamable HTTP: sessions re-initialized after the server answered 404 (expired).
    #[serde(default)]
    pub session_reinitializations: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationResult {
    /// `tools/call:<tool>`.
    pub name: String,
    /// Requests issued in the measured window, successful or not.
    pub count: u64,
    /// Failed requests by kind (`timeout`, `transport`, `protocol`, `jsonrpc:<code>`, `tool_error`).
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The first message of each kind of error (truncated), to say what went wrong.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_samples: BTreeMap<ErrorKind, String>,
    /// Successful calls per second of the measured window.
    pub throughput_per_s: f64,
    /// Latency of every call from its intended send time, µs: answers, failures at the time
    /// they were known, timeouts at the timeout (files written before 0.1.0's load loop held
    /// successes only; `latency_ok_us` is absent in them).
    pub latency_us: LatencySummary,
    /// The latency histogram (µs), HdrHistogram V2+DEFLATE, base64.
    pub histogram: String,
    /// Latency of the successful calls alone, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ok_us: Option<LatencySummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram_ok: Option<String>,
    /// The request timeout (µs), when some calls timed out: a percentile at or above it is
    /// censored (those calls' real latency is unknown, only that it is at least this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censored_at_us: Option<u64>,
    /// Open model only: latency from the actual send rather than the intended one (µs). Compare
    /// with `latency_us` to see how much waiting a naive load generator would have hidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_uncorrected_us: Option<LatencySummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram_uncorrected: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The build command failed.
    Build,
    /// The server could not be started or did not complete `initialize`.
    ServerStart,
    /// The server exited while being measured.
    ServerExit,
    /// The run was interrupted (Ctrl-C, SIGTERM).
    Interrupted,
    /// A threshold with `abort_on_fail` failed.
    Aborted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFailure {
    pub kind: FailureKind,
    pub message: String,
    /// The last lines the server wrote to stderr.
    pub stderr_tail: Vec<String>,
}

impl OperationResult {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn decode_histogram(&self) -> Result<LatencyHistogram, String> {
        LatencyHistogram::decode(&self.histogram)
    }

    /// The latency percentiles on `basis` (a file without the successes-only histogram held
    /// successes only).
    pub fn latency(&self, basis: LatencyBasis) -> &LatencySummary {
        match (basis, &self.latency_ok_us) {
            (LatencyBasis::Successes, Some(ok)) => ok,
            _ => &self.latency_us,
        }
    }

    /// The histogram on `basis`.
    pub fn decode_histogram_on(&self, basis: LatencyBasis) -> Result<LatencyHistogram, String> {
        match (basis, &self.histogram_ok) {
            (LatencyBasis::Successes, Some(ok)) => LatencyHistogram::decode(ok),
            _ => self.decode_histogram(),
        }
    }

    /// Calls whose latency the histogram on `basis` holds.
    pub fn latency_count(&self, basis: LatencyBasis) -> u64 {
        match (basis, &self.latency_ok_us) {
            (LatencyBasis::All, Some(_)) => self.count,
            _ => self.count - self.error_count(),
        }
    }

    /// Whether a latency of `us` is at the timeout: the true value is at least that.
    pub fn is_censored(&self, us: u64) -> bool {
        self.censored_at_us.is_some_and(|t| at_timeout(us, t))
    }
}

/// Whether a latency read from a histogram (µs) is the timeout `timeout_us` recorded: HdrHistogram
/// keeps 3 significant digits, so a value recorded at the timeout reads back within 0.1% of it.
pub fn at_timeout(us: u64, timeout_us: u64) -> bool {
    us as f64 >= timeout_us as f64 * 0.998
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Results {
    /// Reads a results file; a missing, truncated or foreign file is an error naming the file.
    pub fn load(path: &Path) -> anyhow::Result<Results> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read results file {}", path.display()))?;
        Results::from_json(&text).with_context(|| format!("{} is not a usable results file", path.display()))
    }

    pub fn from_json(text: &str) -> anyhow::Result<Results> {
        let results = Results::figures_from_json(text)?;
        results.validate()?;
        Ok(results)
    }

    /// Reads a results file for its figures: the schema checked and every field parsed, the
    /// histograms left undecoded. For a history, which reads a thousand files and uses only
    /// their summaries; anything that merges or compares histograms reads with
    /// [`Results::from_json`].
    pub fn figures_from_json(text: &str) -> anyhow::Result<Results> {
        let schema_error = |schema: Option<&str>| match schema {
            Some(other) => anyhow::anyhow!("schema is `{other}`, this version of mcp-perfcheck reads `{SCHEMA}`"),
            None => anyhow::anyhow!("no `schema` field: not an mcp-perfcheck results file"),
        };
        match serde_json::from_str::<Results>(text) {
            Ok(results) if results.schema == SCHEMA => {
                results.check_commits()?;
                Ok(results)
            }
            Ok(results) => Err(schema_error(Some(&results.schema))),
            // Say plainly when it is a file of another version, rather than which field changed.
            Err(e) => {
                #[derive(Deserialize)]
                struct Probe {
                    schema: Option<String>,
                }
                let probe: Probe = serde_json::from_str(text).context("not valid JSON")?;
                match probe.schema.as_deref() {
                    Some(SCHEMA) => Err(e.into()),
                    other => Err(schema_error(other)),
                }
            }
        }
    }

    /// `git_sha`, here and in the A/B's base, is a commit id (hex digits): it names files in the
    /// git-branch store and is shown in reports, and a results file may come from anyone.
    fn check_commits(&self) -> anyhow::Result<()> {
        if let Some(sha) = &self.git_sha {
            let hex = (4..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit());
            anyhow::ensure!(hex, "field `git_sha` is not a commit id (4 to 64 hex digits)");
        }
        match &self.base_run {
            Some(base) => base.check_commits().context("in `base_run`"),
            None => Ok(()),
        }
    }

    /// Every histogram decodes (on both latency bases): what a file read from disk is checked
    /// for after parsing, and a report from an untrusted job too.
    pub fn validate(&self) -> anyhow::Result<()> {
        for s in &self.scenarios {
            for r in &s.repetitions {
                for op in &r.operations {
                    op.decode_histogram().and_then(|_| op.decode_histogram_on(LatencyBasis::Successes)).map_err(
                        |e| anyhow::anyhow!("scenario `{}` repetition {} `{}`: {e}", s.name, r.index, op.name),
                    )?;
                }
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("results serialize");
        text.push('\n');
        text
    }

    /// Writes the file atomically (temporary file, then rename), so a crash never leaves half a file.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, self.to_json()).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write results file {}", path.display()))
    }

    pub fn scenario(&self, name: &str) -> Option<&ScenarioResult> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

impl ScenarioResult {
    /// Names of the operations measured in any repetition, in first-seen order.
    pub fn operation_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for r in &self.repetitions {
            for op in &r.operations {
                if !names.contains(&op.name.as_str()) {
                    names.push(&op.name);
                }
            }
        }
        names
    }

    /// Only the repetitions that completed: a crashed repetition is not a sample of the server's speed.
    pub fn completed_repetitions(&self) -> impl Iterator<Item = &RepetitionResult> {
        self.repetitions.iter().filter(|r| r.failure.is_none())
    }
}

impl RepetitionResult {
    pub fn operation(&self, name: &str) -> Option<&OperationResult> {
        self.operations.iter().find(|o| o.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../fixtures/results/reference-small.json");

    #[test]
    fn a_results_file_round_trips_byte_for_byte() {
        let results = Results::from_json(FIXTURE).unwrap();
        assert_eq!(results.to_json(), FIXTURE);
    }

    #[test]
    fn wrong_schema_and_truncation_are_clear_errors() {
        let other = FIXTURE.replace(SCHEMA, "mcp-perfcheck/results/v9");
        let e = format!("{:#}", Results::from_json(&other).unwrap_err());
        assert!(e.contains("schema is `mcp-perfcheck/results/v9`"), "{e}");
        let e = format!("{:#}", Results::from_json(&FIXTURE[..FIXTURE.len() / 2]).unwrap_err());
        assert!(e.contains("not valid JSON"), "{e}");
        let e = format!("{:#}", Results::from_json("{\"a\": 1}").unwrap_err());
        assert!(e.contains("no `schema` field"), "{e}");
    }

    #[test]
    fn a_git_sha_that_is_not_a_commit_id_is_refused_by_name() {
        let mut v: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        for sha in ["../../escape", "ab\tcd", "aé0123456789abcdef", "", &"f".repeat(65)] {
            v["git_sha"] = sha.into();
            let e = format!("{:#}", Results::from_json(&v.to_string()).unwrap_err());
            assert!(e.contains("field `git_sha` is not a commit id"), "{sha}: {e}");
        }
        v["git_sha"] = "0123456789abcdef0123456789abcdef01234567".into();
        v["base_run"] = v.clone();
        v["base_run"]["git_sha"] = "not a sha".into();
        let e = format!("{:#}", Results::from_json(&v.to_string()).unwrap_err());
        assert!(e.contains("in `base_run`") && e.contains("`git_sha`"), "{e}");
        v["base_run"]["git_sha"] = "abcd".into();
        assert!(Results::from_json(&v.to_string()).is_ok());
    }

    #[test]
    fn prefixes_are_cut_on_character_boundaries() {
        assert_eq!(prefix("a€€€€", 3), "a€€");
        assert_eq!(short_commit("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_commit("ab"), "ab");
        assert_eq!(prefix("", 10), "");
    }

    #[test]
    fn a_corrupt_histogram_is_named() {
        let results = Results::from_json(FIXTURE).unwrap();
        let hist = &results.scenarios[0].repetitions[0].operations[0].histogram;
        let broken = FIXTURE.replace(hist.as_str(), "AAAA");
        let e = format!("{:#}", Results::from_json(&broken).unwrap_err());
        assert!(e.contains("repetition 1"), "{e}");
    }
}
