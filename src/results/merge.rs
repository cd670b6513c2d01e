//! The exact merge of a sharded run's files (`mcp-perfcheck merge`): one results file from the
//! N shards of one config, as if one generator had sent every shard's calls.
//!
//! What merges exactly: every latency histogram (per scenario, repetition and operation, on
//! each basis: HdrHistograms add bucket by bucket, so the merged percentiles are those of all
//! the calls), counts, errors by kind, sends, and rates (each shard's rate is its share of the
//! planned rate, so they add up to it). What cannot, and what is done instead, is said where it
//! is done: per-second points keep no histogram, so a merged second's p99 is the worst shard's
//! and its p50 the calls-weighted mean; the generators' own cost is summed and also kept per
//! shard ([`ShardPart`]), never added to the server's; a server each shard launched for itself
//! is reported per instance (its peak RSS the largest, its CPU per call over all the calls).
//!
//! Shards are checked before anything merges: the same shard count, config hash, tool
//! version, commit and scenarios, every index once. A repetition some shard lacks is kept,
//! marked failed, so that it decides nothing.

use std::collections::BTreeMap;

use super::{
    BreakpointResult, ClientCost, ConnectionStats, FaultFigures, FaultWindow, LoadStats, OperationResult,
    RepetitionResult, Results, RuntimeFigures, SCHEMA, ScenarioResult, SeriesPoint, ShardPart, Sharding, SpikeResult,
    WallWindow,
};
use crate::config::MAX_SHARDS;
use crate::measure::{LatencyHistogram, LatencySummary, ResourceSummary};

/// Why shards cannot be merged. Each names the files.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("nothing to merge: give every shard's results file")]
    Empty,
    #[error("{file} is not a shard's results file: it has no shard record (written by `run --shard K/N`)")]
    NotAShard { file: String },
    #[error("{file} is already a merged file; merge the shards' own files")]
    AlreadyMerged { file: String },
    #[error("{file} claims to be shard {index} of {count}: a shard is K of N with 1 ≤ K ≤ N ≤ {MAX_SHARDS}")]
    OutOfRange { file: String, index: u32, count: u32 },
    #[error("the shards disagree on the shard count: {first} is one of {first_count}, {file} one of {count}")]
    Count { first: String, first_count: u32, file: String, count: u32 },
    #[error(
        "the shards ran different configs: {first} has config hash {first_hash:.12}…, {file} {hash:.12}… (every shard must run the same config)"
    )]
    Config { first: String, first_hash: String, file: String, hash: String },
    #[error("the shards ran different versions of mcp-perfcheck: {first} {first_version}, {file} {version}")]
    Version { first: String, first_version: String, file: String, version: String },
    #[error("the shards measured different commits: {first} {first_sha:.12}, {file} {sha:.12}")]
    Commit { first: String, first_sha: String, file: String, sha: String },
    #[error("the shards measured different scenarios: {first} has [{first_names}], {file} [{names}]")]
    Scenarios { first: String, first_names: String, file: String, names: String },
    #[error("shard {index} of {count} is given twice: {first} and {file}")]
    Duplicate { index: u32, count: u32, first: String, file: String },
    #[error("shard(s) {missing} of {count} missing: a merge needs every shard (given: {given})")]
    Missing { missing: String, count: u32, given: String },
    #[error("{file}: scenario `{scenario}` repetition {index} `{operation}`: {why}")]
    Histogram { file: String, scenario: String, index: u32, operation: String, why: String },
}

/// A merged run, and what the merge noticed that a reader should know.
#[derive(Debug)]
pub struct Merged {
    pub results: Results,
    /// Skew, shards on different machines, incomplete repetitions.
    pub notes: Vec<String>,
    /// Some shard judged thresholds on its own part of the load: those verdicts are left out
    /// of the merge (the caller says so, or judges the config's on the merged figures).
    pub shard_thresholds_dropped: bool,
}

/// A shard's file: what to call it in messages, and what it holds.
pub struct ShardFile {
    pub name: String,
    pub results: Results,
}

/// Merges the shards of one run. They may come in any order.
pub fn merge(mut shards: Vec<ShardFile>) -> Result<Merged, MergeError> {
    let count = check(&shards)?;
    shards.sort_by_key(|s| s.results.sharding.as_ref().and_then(|x| x.index));
    let first = &shards[0].results;
    let mut notes = Vec::new();
    if shards.iter().any(|s| s.results.environment != first.environment) {
        notes.push(
            "the shards ran on different machines: the merged file carries shard 1's fingerprint, and a comparison with a run on one machine is advisory"
                .to_string(),
        );
    }
    let shard_thresholds_dropped = shards.iter().any(|s| !s.results.thresholds.is_empty());
    let mut scenarios = Vec::with_capacity(first.scenarios.len());
    let mut skew_ms = 0;
    for (si, scenario) in first.scenarios.iter().enumerate() {
        let parts: Vec<(&ShardFile, &ScenarioResult)> = shards.iter().map(|s| (s, &s.results.scenarios[si])).collect();
        let (merged, skew) = merge_scenario(scenario, &parts, &mut notes)?;
        skew_ms = skew_ms.max(skew);
        scenarios.push(merged);
    }
    if skew_ms > 0 {
        notes.push(format!(
            "the shards' measured windows started up to {skew_ms} ms apart (their series are aligned on the wall clock)"
        ));
    }
    let failure = shards.iter().find_map(|s| {
        s.results.failure.clone().map(|mut f| {
            f.message = format!("shard {}: {}", shard_index(s), f.message);
            f
        })
    });
    let sharding = first.sharding.as_ref().expect("checked");
    let results = Results {
        schema: SCHEMA.to_string(),
        tool_version: first.tool_version.clone(),
        timestamp: shards.iter().map(|s| s.results.timestamp.clone()).min().expect("not empty"),
        git_sha: shards.iter().find_map(|s| s.results.git_sha.clone()),
        config_source: first.config_source.clone(),
        environment: first.environment.clone(),
        server: shards.iter().find_map(|s| s.results.server.clone()),
        scenarios,
        thresholds: Vec::new(),
        failure,
        base_run: None,
        pairing: None,
        looks: None,
        sharding: Some(Sharding {
            index: None,
            count,
            config_hash: sharding.config_hash.clone(),
            start_at: sharding.start_at.clone(),
            skew_ms: Some(skew_ms),
        }),
    };
    Ok(Merged { results, notes, shard_thresholds_dropped })
}

fn shard_index(s: &ShardFile) -> u32 {
    s.results.sharding.as_ref().and_then(|x| x.index).unwrap_or(0)
}

/// Checks that the files are the shards of one run, every one of them once; the shard count.
fn check(shards: &[ShardFile]) -> Result<u32, MergeError> {
    let first = shards.first().ok_or(MergeError::Empty)?;
    let sharding = |s: &ShardFile| -> Result<(u32, u32, String), MergeError> {
        let x = s.results.sharding.as_ref().ok_or_else(|| MergeError::NotAShard { file: s.name.clone() })?;
        let index = x.index.ok_or_else(|| MergeError::AlreadyMerged { file: s.name.clone() })?;
        // The count sizes what the merge lists as missing: a file may claim anything.
        if index == 0 || index > x.count || x.count > MAX_SHARDS {
            return Err(MergeError::OutOfRange { file: s.name.clone(), index, count: x.count });
        }
        Ok((index, x.count, x.config_hash.clone()))
    };
    let names = |r: &Results| r.scenarios.iter().map(|s| format!("`{}`", s.name)).collect::<Vec<_>>().join(", ");
    let (_, count, hash) = sharding(first)?;
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for s in shards {
        let (index, c, h) = sharding(s)?;
        let (first_name, file) = (first.name.clone(), s.name.clone());
        if c != count {
            return Err(MergeError::Count { first: first_name, first_count: count, file, count: c });
        }
        if h != hash {
            return Err(MergeError::Config { first: first_name, first_hash: hash, file, hash: h });
        }
        if s.results.tool_version != first.results.tool_version {
            return Err(MergeError::Version {
                first: first_name,
                first_version: first.results.tool_version.clone(),
                file,
                version: s.results.tool_version.clone(),
            });
        }
        if let (Some(a), Some(b)) = (&first.results.git_sha, &s.results.git_sha)
            && a != b
        {
            return Err(MergeError::Commit { first: first_name, first_sha: a.clone(), file, sha: b.clone() });
        }
        let same_scenarios = s.results.scenarios.len() == first.results.scenarios.len()
            && s.results.scenarios.iter().zip(&first.results.scenarios).all(|(a, b)| a.name == b.name);
        if !same_scenarios {
            return Err(MergeError::Scenarios {
                first: first_name,
                first_names: names(&first.results),
                file,
                names: names(&s.results),
            });
        }
        if let Some(other) = seen.insert(index, &s.name) {
            return Err(MergeError::Duplicate { index, count, first: other.to_string(), file });
        }
    }
    let missing: Vec<String> = (1..=count).filter(|i| !seen.contains_key(i)).map(|i| i.to_string()).collect();
    if !missing.is_empty() {
        let given = seen.keys().map(u32::to_string).collect::<Vec<_>>().join(", ");
        return Err(MergeError::Missing { missing: missing.join(", "), count, given });
    }
    Ok(count)
}

/// One scenario over every shard: its repetitions merged by index. Also the largest skew.
fn merge_scenario(
    scenario: &ScenarioResult,
    parts: &[(&ShardFile, &ScenarioResult)],
    notes: &mut Vec<String>,
) -> Result<(ScenarioResult, u64), MergeError> {
    let mut indices: Vec<u32> = parts.iter().flat_map(|(_, s)| s.repetitions.iter().map(|r| r.index)).collect();
    indices.sort_unstable();
    indices.dedup();
    let bucket_s = super::series_bucket_s(scenario.duration_s as u64) as f64;
    let mut repetitions = Vec::with_capacity(indices.len());
    let mut skew = 0;
    for index in indices {
        let present: Vec<(u32, &str, &RepetitionResult)> = parts
            .iter()
            .filter_map(|(f, s)| s.repetitions.iter().find(|r| r.index == index).map(|r| (shard_index(f), &*f.name, r)))
            .collect();
        let mut merged = merge_repetition(&scenario.name, index, &present, bucket_s)?;
        if present.len() < parts.len() {
            let lacking: Vec<String> = parts
                .iter()
                .filter(|(_, s)| !s.repetitions.iter().any(|r| r.index == index))
                .map(|(f, _)| shard_index(f).to_string())
                .collect();
            let why = format!("shard(s) {} did not measure this repetition", lacking.join(", "));
            notes.push(format!("scenario `{}` repetition {index}: {why}; it decides nothing", scenario.name));
            merged.failure.get_or_insert(why);
        }
        skew = skew.max(skew_of(&merged.shards));
        repetitions.push(merged);
    }
    Ok((ScenarioResult { repetitions, ..scenario.clone() }, skew))
}

/// The spread of the shards' window starts, ms.
fn skew_of(parts: &[ShardPart]) -> u64 {
    let starts = || parts.iter().filter_map(|p| p.window.map(|w| w.start_unix_ms));
    match (starts().min(), starts().max()) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    }
}

fn merge_repetition(
    scenario: &str,
    index: u32,
    parts: &[(u32, &str, &RepetitionResult)],
    bucket_s: f64,
) -> Result<RepetitionResult, MergeError> {
    let reps: Vec<&RepetitionResult> = parts.iter().map(|(_, _, r)| *r).collect();
    let window = merge_windows(reps.iter().filter_map(|r| r.window));
    let mut operations = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for r in &reps {
        for op in &r.operations {
            if !names.contains(&op.name.as_str()) {
                names.push(&op.name);
            }
        }
    }
    for name in names {
        let ops: Vec<(&str, &OperationResult)> =
            parts.iter().filter_map(|(_, file, r)| r.operation(name).map(|o| (*file, o))).collect();
        let bad = |file: &str, why: String| MergeError::Histogram {
            file: file.to_string(),
            scenario: scenario.to_string(),
            index,
            operation: name.to_string(),
            why,
        };
        operations.push(merge_operation(&ops).map_err(|(file, why)| bad(file, why))?);
    }
    let sent: u64 = reps.iter().map(|r| r.load.sent).sum();
    let failure = parts.iter().find_map(|(k, _, r)| r.failure.as_ref().map(|f| format!("shard {k}: {f}")));
    Ok(RepetitionResult {
        index,
        measured_s: reps.iter().map(|r| r.measured_s).fold(0.0, f64::max),
        operations,
        unattributed_errors: sum_maps(reps.iter().map(|r| &r.unattributed_errors)),
        connection: merge_connections(&reps),
        load: merge_load(reps.iter().map(|r| &r.load)),
        server_resources: merge_resources(&reps, sent),
        // Shard 1's scrapes: with one shared server they cover every shard's calls.
        server_metrics: reps.iter().find_map(|r| r.server_metrics.clone()),
        client: merge_clients(reps.iter().map(|r| &r.client), sent),
        series: merge_series(&reps, window, bucket_s),
        spike: merge_spikes(&reps),
        breakpoint: merge_breakpoints(&reps),
        faults: merge_faults(&reps),
        runtime: merge_runtime(&reps),
        failure,
        window,
        shards: parts
            .iter()
            .map(|(k, _, r)| ShardPart {
                index: *k,
                window: r.window,
                load: r.load.clone(),
                client: r.client.clone(),
                server_resources: r.server_resources.clone(),
                failure: r.failure.clone(),
            })
            .collect(),
    })
}

fn merge_windows(windows: impl Iterator<Item = WallWindow>) -> Option<WallWindow> {
    windows.reduce(|a, b| WallWindow {
        start_unix_ms: a.start_unix_ms.min(b.start_unix_ms),
        end_unix_ms: a.end_unix_ms.max(b.end_unix_ms),
        planned_start_unix_ms: a.planned_start_unix_ms.or(b.planned_start_unix_ms),
    })
}

/// One operation over the shards that called it. `Err`: the file whose histogram is bad.
fn merge_operation<'a>(ops: &[(&'a str, &OperationResult)]) -> Result<OperationResult, (&'a str, String)> {
    // Every histogram of a basis, merged; `None` when some shard's file lacks that basis.
    let merged =
        |get: &dyn Fn(&OperationResult) -> Option<&String>| -> Result<Option<LatencyHistogram>, (&'a str, String)> {
            let mut total = LatencyHistogram::new();
            for (file, op) in ops {
                match get(op) {
                    Some(text) => total.merge(&LatencyHistogram::decode(text).map_err(|e| (*file, e))?),
                    None => return Ok(None),
                }
            }
            Ok(Some(total))
        };
    let all = merged(&|o| Some(&o.histogram))?.expect("every operation has its histogram");
    let ok = merged(&|o| o.histogram_ok.as_ref())?;
    let uncorrected = merged(&|o| o.histogram_uncorrected.as_ref())?;
    let first = ops[0].1;
    let mut error_samples = BTreeMap::new();
    for (_, op) in ops {
        for (kind, why) in &op.error_samples {
            error_samples.entry(*kind).or_insert_with(|| why.clone());
        }
    }
    Ok(OperationResult {
        name: first.name.clone(),
        count: ops.iter().map(|(_, o)| o.count).sum(),
        errors: sum_maps(ops.iter().map(|(_, o)| &o.errors)),
        error_samples,
        throughput_per_s: ops.iter().map(|(_, o)| o.throughput_per_s).sum(),
        latency_us: all.summary(),
        histogram: all.encode(),
        latency_ok_us: ok.as_ref().map(LatencyHistogram::summary),
        histogram_ok: ok.as_ref().map(LatencyHistogram::encode),
        censored_at_us: ops.iter().filter_map(|(_, o)| o.censored_at_us).max(),
        latency_uncorrected_us: uncorrected.as_ref().map(LatencyHistogram::summary),
        histogram_uncorrected: uncorrected.as_ref().map(LatencyHistogram::encode),
    })
}

fn sum_maps<'a, K: Ord + Copy + 'a>(maps: impl Iterator<Item = &'a BTreeMap<K, u64>>) -> BTreeMap<K, u64> {
    let mut total = BTreeMap::new();
    for m in maps {
        for (k, n) in m {
            *total.entry(*k).or_default() += n;
        }
    }
    total
}

fn merge_connections(reps: &[&RepetitionResult]) -> ConnectionStats {
    let sum = |f: fn(&ConnectionStats) -> u64| reps.iter().map(|r| f(&r.connection)).sum();
    ConnectionStats {
        notifications: sum(|c| c.notifications),
        server_requests: sum(|c| c.server_requests),
        late_responses: sum(|c| c.late_responses),
        malformed_sample: reps.iter().find_map(|r| r.connection.malformed_sample.clone()),
        session_reinitializations: sum(|c| c.session_reinitializations),
    }
}

/// Sends add up, and so do rates (each shard planned and achieved its share). The send lag
/// keeps no histogram: the worst shard's, figure by figure, an upper bound.
fn merge_load<'a>(loads: impl Iterator<Item = &'a LoadStats> + Clone) -> LoadStats {
    let lag = loads.clone().filter_map(|l| l.send_lag_us).reduce(|a, b| LatencySummary {
        p50: a.p50.max(b.p50),
        p90: a.p90.max(b.p90),
        p95: a.p95.max(b.p95),
        p99: a.p99.max(b.p99),
        p999: a.p999.max(b.p999),
        max: a.max.max(b.max),
        mean: a.mean.max(b.mean),
    });
    let targets: Vec<f64> = loads.clone().filter_map(|l| l.target_rate_per_s).collect();
    LoadStats {
        sent: loads.clone().map(|l| l.sent).sum(),
        late_sends: loads.clone().map(|l| l.late_sends).sum(),
        dropped_sends: loads.clone().map(|l| l.dropped_sends).sum(),
        target_rate_per_s: (!targets.is_empty()).then(|| targets.iter().sum()),
        achieved_rate_per_s: loads.map(|l| l.achieved_rate_per_s).sum(),
        send_lag_us: lag,
    }
}

/// The generators together: their CPU summed (per call over every call), their largest RSS.
fn merge_clients<'a>(clients: impl Iterator<Item = &'a ClientCost> + Clone, sent: u64) -> ClientCost {
    let cpu: f64 = clients.clone().map(|c| c.cpu_seconds).sum();
    ClientCost {
        cpu_seconds: cpu,
        cpu_us_per_call: if sent > 0 { cpu * 1e6 / sent as f64 } else { 0.0 },
        sampler_cpu_seconds: clients.clone().map(|c| c.sampler_cpu_seconds).sum(),
        rss_peak_bytes: clients.clone().map(|c| c.rss_peak_bytes).max().unwrap_or(0),
        bytes_sent: clients.clone().map(|c| c.bytes_sent).sum(),
        bytes_received: clients.clone().map(|c| c.bytes_received).sum(),
        connections_opened: clients.map(|c| c.connections_opened).sum(),
    }
}

/// Servers the shards launched for themselves, one per shard: figures per instance (the
/// largest peak, the largest slope) and the CPU of all of them over all the calls. Absent
/// unless every shard had one (shards sharing a server at a URL sample none).
fn merge_resources(reps: &[&RepetitionResult], sent: u64) -> Option<ResourceSummary> {
    let all: Vec<&ResourceSummary> = reps.iter().map(|r| r.server_resources.as_ref()).collect::<Option<_>>()?;
    let max = |f: fn(&ResourceSummary) -> f64| all.iter().map(|r| f(r)).fold(f64::MIN, f64::max);
    let max_u = |f: fn(&ResourceSummary) -> u64| all.iter().map(|r| f(r)).max().unwrap_or(0);
    let cpu: f64 = all.iter().map(|r| r.cpu_seconds).sum();
    Some(ResourceSummary {
        samples: all.iter().map(|r| r.samples).sum(),
        rss_peak_bytes: max_u(|r| r.rss_peak_bytes),
        rss_final_bytes: max_u(|r| r.rss_final_bytes),
        rss_mean_bytes: all.iter().map(|r| r.rss_mean_bytes).sum::<f64>() / all.len() as f64,
        rss_slope_bytes_per_s: max(|r| r.rss_slope_bytes_per_s),
        cpu_seconds: cpu,
        threads_peak: max_u(|r| r.threads_peak),
        open_fds_peak: max_u(|r| r.open_fds_peak),
        open_fds_final: max_u(|r| r.open_fds_final),
        open_fds_slope_per_s: max(|r| r.open_fds_slope_per_s),
        processes_peak: max_u(|r| r.processes_peak),
        cpu_us_per_call: if sent > 0 { cpu * 1e6 / sent as f64 } else { 0.0 },
    })
}

/// The shards' per-second points on one wall-clock grid from the earliest window start: calls
/// and errors add up; a second's p99 is the worst shard's (an upper bound: points keep no
/// histogram) and its p50 the calls-weighted mean; RSS and CPU, of servers the shards launched,
/// add up.
fn merge_series(reps: &[&RepetitionResult], window: Option<WallWindow>, bucket_s: f64) -> Vec<SeriesPoint> {
    let origin = window.map(|w| w.start_unix_ms);
    let mut buckets: BTreeMap<u64, Vec<(f64, &SeriesPoint)>> = BTreeMap::new();
    for r in reps {
        let shift = match (origin, r.window) {
            (Some(o), Some(w)) => (w.start_unix_ms - o) as f64 / 1e3,
            _ => 0.0,
        };
        for p in &r.series {
            let t = p.t_s + shift;
            buckets.entry((t / bucket_s).round().max(1.0) as u64).or_default().push((t, p));
        }
    }
    let sum_opt = |xs: Vec<Option<f64>>| xs.iter().copied().sum::<Option<f64>>();
    buckets
        .into_values()
        .map(|points| {
            let calls: f64 = points.iter().map(|(_, p)| p.calls_per_s).sum();
            let weighted = points.iter().map(|(_, p)| p.p50_us as f64 * p.calls_per_s).sum::<f64>();
            SeriesPoint {
                t_s: points.iter().map(|(t, _)| *t).fold(0.0, f64::max),
                calls_per_s: calls,
                errors: points.iter().map(|(_, p)| p.errors).sum(),
                p50_us: if calls > 0.0 { (weighted / calls).round() as u64 } else { 0 },
                p99_us: points.iter().map(|(_, p)| p.p99_us).max().unwrap_or(0),
                rss_bytes: points.iter().map(|(_, p)| p.rss_bytes).sum(),
                cpu_percent: sum_opt(points.iter().map(|(_, p)| p.cpu_percent).collect()),
            }
        })
        .collect()
}

/// A spike's figures over the shards: the worst of each (recovery: when the last shard
/// recovered; none if one did not).
fn merge_spikes(reps: &[&RepetitionResult]) -> Option<SpikeResult> {
    let all: Vec<&SpikeResult> = reps.iter().filter_map(|r| r.spike.as_ref()).collect();
    let first = *all.first()?;
    Some(SpikeResult {
        baseline_p99_us: all.iter().map(|s| s.baseline_p99_us).max().unwrap_or(0),
        peak_p99_us: all.iter().map(|s| s.peak_p99_us).max().unwrap_or(0),
        recovery_s: all
            .iter()
            .map(|s| s.recovery_s)
            .collect::<Option<Vec<f64>>>()
            .map(|v| v.into_iter().fold(0.0, f64::max)),
        ..first.clone()
    })
}

/// Capacities add up (each shard held its share of the ramp); the first shard to break a
/// limit says when and why.
fn merge_breakpoints(reps: &[&RepetitionResult]) -> Option<BreakpointResult> {
    let all: Vec<&BreakpointResult> = reps.iter().filter_map(|r| r.breakpoint.as_ref()).collect();
    if all.is_empty() {
        return None;
    }
    let first_break =
        all.iter().filter_map(|b| Some((b.broke_at_s?, b))).min_by(|a, b| a.0.total_cmp(&b.0)).map(|(_, b)| b);
    Some(BreakpointResult {
        capacity_per_s: all.iter().map(|b| b.capacity_per_s).sum(),
        broke_at_s: first_break.and_then(|b| b.broke_at_s),
        rate_at_break_per_s: first_break.and_then(|b| b.rate_at_break_per_s),
        broken_by: first_break.and_then(|b| b.broken_by.clone()),
    })
}

/// Each fault window over the shards: calls add up, shares weighted by calls; the first breaker
/// opening, and the last close and recovery (none if a shard did not recover).
fn merge_faults(reps: &[&RepetitionResult]) -> Vec<FaultWindow> {
    let Some(first) = reps.first() else { return Vec::new() };
    (0..first.faults.len())
        .map(|i| {
            let all: Vec<&FaultFigures> = reps.iter().filter_map(|r| r.faults.get(i)?.figures.as_ref()).collect();
            let calls: u64 = all.iter().map(|f| f.calls).sum();
            let share = |get: fn(&FaultFigures) -> Option<f64>| {
                let known: Vec<(f64, u64)> = all.iter().filter_map(|f| get(f).map(|x| (x, f.calls))).collect();
                let n: u64 = known.iter().map(|k| k.1).sum();
                (n > 0).then(|| known.iter().map(|(x, c)| x * *c as f64).sum::<f64>() / n as f64)
            };
            let latest = |get: fn(&FaultFigures) -> Option<f64>| {
                all.iter().map(|f| get(f)).collect::<Option<Vec<f64>>>().map(|v| v.into_iter().fold(0.0, f64::max))
            };
            let figures = (!all.is_empty()).then(|| FaultFigures {
                calls,
                error_rate: share(|f| f.error_rate),
                degraded_share: share(|f| f.degraded_share),
                breaker_opened_after_s: all.iter().filter_map(|f| f.breaker_opened_after_s).reduce(f64::min),
                breaker_closed_after_s: latest(|f| f.breaker_closed_after_s),
                recovery_s: latest(|f| f.recovery_s),
            });
            FaultWindow { figures, ..first.faults[i].clone() }
        })
        .collect()
}

fn merge_runtime(reps: &[&RepetitionResult]) -> Option<RuntimeFigures> {
    let all: Vec<&RuntimeFigures> = reps.iter().filter_map(|r| r.runtime.as_ref()).collect();
    if all.is_empty() {
        return None;
    }
    let sum = |f: fn(&RuntimeFigures) -> u64| all.iter().map(|r| f(r)).sum::<u64>();
    let (hits, stale, misses) = (sum(|r| r.cache_hits), sum(|r| r.cache_stale), sum(|r| r.cache_misses));
    let lookups = hits + stale + misses;
    let mut open: Vec<String> = all.iter().flat_map(|r| r.breakers_open_at_end.iter().cloned()).collect();
    open.sort();
    open.dedup();
    Some(RuntimeFigures {
        cache_hits: hits,
        cache_stale: stale,
        cache_misses: misses,
        cache_hit_ratio: (lookups > 0).then(|| (hits + stale) as f64 / lookups as f64),
        breaker_opens: sum(|r| r.breaker_opens),
        breakers_open_at_end: open,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::measure::ErrorKind;

    const FIXTURE: &str = include_str!("../../fixtures/results/reference-open.json");

    /// Shard `k` of `n`: the fixture's run with each operation's histograms replaced by
    /// `latencies` (µs) shifted by the shard, one timeout per shard, and its window starting
    /// `k − 1` × `skew_ms` after the others'.
    fn shard(k: u32, n: u32, skew_ms: u64) -> ShardFile {
        let mut results = Results::from_json(FIXTURE).unwrap();
        results.sharding =
            Some(Sharding { index: Some(k), count: n, config_hash: "ab".repeat(32), start_at: None, skew_ms: None });
        for s in &mut results.scenarios {
            for r in &mut s.repetitions {
                let start = 1_000_000 + u64::from(r.index) * 10_000 + u64::from(k - 1) * skew_ms;
                r.window =
                    Some(WallWindow { start_unix_ms: start, end_unix_ms: start + 2000, planned_start_unix_ms: None });
                for (i, op) in r.operations.iter_mut().enumerate() {
                    let mut h = LatencyHistogram::new();
                    for us in 0..(100 + u64::from(k) * 10) {
                        h.record(Duration::from_micros(200 + us * (u64::from(k) + i as u64)));
                    }
                    op.histogram = h.encode();
                    op.histogram_ok = Some(h.encode());
                    op.count = h.len() + 1;
                    op.errors = BTreeMap::from([(ErrorKind::Timeout, 1)]);
                    op.throughput_per_s = 10.0 * f64::from(k);
                }
            }
        }
        ShardFile { name: format!("shard-{k}.json"), results }
    }

    #[test]
    fn histograms_merge_bucket_for_bucket_and_counts_and_rates_add_up() {
        let shards: Vec<ShardFile> = (1..=3).map(|k| shard(k, 3, 0)).collect();
        let expected: Vec<(LatencyHistogram, u64)> = {
            let op = |k: usize| &shards[k].results.scenarios[0].repetitions[0].operations[0];
            let mut h = LatencyHistogram::new();
            (0..3).for_each(|k| h.merge(&op(k).decode_histogram().unwrap()));
            vec![(h, (0..3).map(|k| op(k).count).sum())]
        };
        // In any order.
        let merged = merge(shards.into_iter().rev().collect()).unwrap().results;
        let op = &merged.scenarios[0].repetitions[0].operations[0];
        let h = op.decode_histogram().unwrap();
        assert_eq!(h.buckets(), expected[0].0.buckets(), "the same buckets and counts");
        assert_eq!(op.latency_us, expected[0].0.summary(), "percentiles of every call");
        assert_eq!((op.count, op.errors[&ErrorKind::Timeout], op.throughput_per_s), (expected[0].1, 3, 60.0));
        let x = merged.sharding.unwrap();
        assert_eq!((x.index, x.count, x.skew_ms), (None, 3, Some(0)));
        let rep = &merged.scenarios[0].repetitions[0];
        assert_eq!(rep.shards.iter().map(|p| p.index).collect::<Vec<_>>(), vec![1, 2, 3]);
        let first = Results::from_json(FIXTURE).unwrap();
        let one = &first.scenarios[0].repetitions[0];
        assert_eq!(rep.load.sent, 3 * one.load.sent);
        assert!((rep.load.achieved_rate_per_s - 3.0 * one.load.achieved_rate_per_s).abs() < 1e-9);
        assert!((rep.client.cpu_seconds - 3.0 * one.client.cpu_seconds).abs() < 1e-9, "generators summed");
        assert_eq!(rep.shards[1].client, one.client, "and kept per shard");
    }

    #[test]
    fn series_are_aligned_on_the_wall_clock_and_the_skew_is_reported() {
        let merged = merge((1..=2).map(|k| shard(k, 2, 1000)).collect()).unwrap();
        let rep = &merged.results.scenarios[0].repetitions[0];
        let one = &shard(1, 2, 0).results.scenarios[0].repetitions[0];
        // Shard 2 started a second later: its first second is the merged run's second.
        assert_eq!(rep.series.len(), one.series.len() + 1);
        assert_eq!(rep.series[0].calls_per_s, one.series[0].calls_per_s);
        assert_eq!(rep.series[1].calls_per_s, one.series[1].calls_per_s + one.series[0].calls_per_s);
        assert_eq!(rep.window.unwrap().start_unix_ms, one.window.unwrap().start_unix_ms);
        assert_eq!(merged.results.sharding.unwrap().skew_ms, Some(1000));
        assert!(merged.notes.iter().any(|n| n.contains("up to 1000 ms apart")), "{:?}", merged.notes);
    }

    #[test]
    fn servers_of_their_own_are_reported_per_instance() {
        let mut shards: Vec<ShardFile> = (1..=2).map(|k| shard(k, 2, 0)).collect();
        let set = |s: &mut ShardFile, rss: u64, cpu: f64| {
            let r = s.results.scenarios[0].repetitions[0].server_resources.as_mut().unwrap();
            (r.rss_peak_bytes, r.cpu_seconds) = (rss, cpu);
        };
        set(&mut shards[0], 50 << 20, 0.5);
        set(&mut shards[1], 70 << 20, 0.25);
        let merged = merge(shards).unwrap().results;
        let rep = &merged.scenarios[0].repetitions[0];
        let r = rep.server_resources.as_ref().unwrap();
        assert_eq!(r.rss_peak_bytes, 70 << 20, "the largest instance");
        assert!((r.cpu_us_per_call - 0.75e6 / rep.load.sent as f64).abs() < 1e-6, "all the CPU over all the calls");
    }

    #[test]
    fn verdicts_a_shard_judged_on_its_part_are_dropped_and_flagged() {
        let mut shards: Vec<ShardFile> = (1..=2).map(|k| shard(k, 2, 0)).collect();
        assert!(
            !merge(shards.iter().map(|s| ShardFile { name: s.name.clone(), results: s.results.clone() }).collect())
                .unwrap()
                .shard_thresholds_dropped
        );
        shards[1].results.thresholds = vec![super::super::ThresholdOutcome {
            key: "tools/call".into(),
            expression: "p(95)<50ms".into(),
            observed: Some(1_000.0),
            quantity: crate::measure::Quantity::Duration,
            held: true,
        }];
        // A scenario's name is the server's business: no note is found or dropped by its text.
        shards.iter_mut().for_each(|s| s.results.scenarios[0].name = "thresholds".into());
        let merged = merge(shards).unwrap();
        assert!(merged.shard_thresholds_dropped && merged.results.thresholds.is_empty());
    }

    #[test]
    fn a_repetition_a_shard_lacks_is_kept_failed() {
        let mut shards: Vec<ShardFile> = (1..=2).map(|k| shard(k, 2, 0)).collect();
        shards[1].results.scenarios[0].repetitions.pop();
        let merged = merge(shards).unwrap();
        let last = merged.results.scenarios[0].repetitions.last().unwrap();
        assert_eq!(last.failure.as_deref(), Some("shard(s) 2 did not measure this repetition"));
        assert!(merged.notes.iter().any(|n| n.contains("decides nothing")));
    }

    #[test]
    fn files_that_are_not_every_shard_of_one_run_are_refused_by_name() {
        let three = || (1..=3).map(|k| shard(k, 3, 0)).collect::<Vec<_>>();
        let refused = |shards: Vec<ShardFile>| merge(shards).unwrap_err().to_string();

        let mut other_config = three();
        other_config[2].results.sharding.as_mut().unwrap().config_hash = "cd".repeat(32);
        let e = refused(other_config);
        assert!(e.contains("different configs") && e.contains("shard-3.json"), "{e}");

        let e = refused(three().into_iter().take(2).collect());
        assert_eq!(e, "shard(s) 3 of 3 missing: a merge needs every shard (given: 1, 2)");

        let mut twice = three();
        twice[2] = shard(2, 3, 0);
        twice[2].name = "again.json".into();
        assert_eq!(refused(twice), "shard 2 of 3 is given twice: shard-2.json and again.json");

        let mut count = three();
        count[1] = shard(2, 4, 0);
        assert!(refused(count).contains("shard-1.json is one of 3, shard-2.json one of 4"));

        let mut version = three();
        version[1].results.tool_version = "9.9.9".into();
        assert!(refused(version).contains("different versions of mcp-perfcheck"));

        let mut scenarios = three();
        scenarios[1].results.scenarios[0].name = "other".into();
        assert!(refused(scenarios).contains("different scenarios"));

        let mut unsharded = three();
        unsharded[0].results.sharding = None;
        assert!(refused(unsharded).contains("shard-1.json is not a shard's results file"));

        // A forged count would make the list of missing shards billions long.
        for (index, count) in [(0, 3), (4, 3), (1, u32::MAX)] {
            let mut forged = three();
            let x = forged[0].results.sharding.as_mut().unwrap();
            (x.index, x.count) = (Some(index), count);
            let e = refused(forged);
            assert!(e.contains(&format!("shard-1.json claims to be shard {index} of {count}")), "{e}");
        }

        let merged = merge(three()).unwrap().results;
        let again = vec![ShardFile { name: "merged.json".into(), results: merged }];
        assert!(refused(again).contains("merged.json is already a merged file"));
        assert_eq!(refused(Vec::new()), MergeError::Empty.to_string());
    }
}
