//! `run --shard K/N` and `--start-at`: which share of the config this process drives and when
//! its windows start; `merge`: the shards' files into one.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;

use super::{Outcome, exporter, load_plan};
use crate::config::{CommonStart, Plan, Shard, StartAt};
use crate::report::Format;
use crate::results::{Results, ShardFile};
use crate::stats::thresholds;

#[derive(clap::Args, Debug, Default)]
pub struct ShardArgs {
    /// Drive shard K of N of every scenario (open model: every Nth planned send, at its planned
    /// time; closed model and iterations: 1/N of the users, iterations and in-flight slots),
    /// for `mcp-perfcheck merge` to join with the other shards' files.
    #[arg(long, value_name = "K/N", env = "MCP_PERFCHECK_SHARD", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// The shard count of a Kubernetes Indexed Job: this pod's shard is JOB_COMPLETION_INDEX + 1.
    #[arg(long, value_name = "N", conflicts_with = "shard", value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::config::MAX_SHARDS)))]
    pub shards: Option<u32>,
    /// Start the first measured window at this time (RFC 3339, e.g. 2026-12-06T10:00:00Z), or
    /// at the next multiple of a period of the clock (`next:10s`), so that every shard's
    /// windows start together; later windows follow a timetable every shard computes alike.
    #[arg(long, value_name = "TIME", env = "MCP_PERFCHECK_START_AT", value_parser = StartAt::parse)]
    pub start_at: Option<StartAt>,
    /// With --start-at: the time between one measured window's end and the next warm-up, to
    /// end one server and start the next. A shard that needs longer starts late and says so.
    #[arg(long, default_value = "2s", value_name = "DURATION", requires = "start_at", value_parser = humantime::parse_duration)]
    pub slot_gap: Duration,
}

impl ShardArgs {
    /// The shard this process is, from `--shard`, or `--shards` and `JOB_COMPLETION_INDEX`.
    fn shard(&self) -> anyhow::Result<Option<Shard>> {
        match (self.shard, self.shards) {
            (Some(s), _) => Ok(Some(s)),
            (None, Some(count)) => {
                let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                    anyhow::anyhow!(
                        "--shards {count} takes this shard's index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's), which is not set: use --shard K/{count}"
                    )
                })?;
                Shard::from_completion_index(&index, count).map(Some).map_err(anyhow::Error::msg)
            }
            (None, None) => Ok(None),
        }
    }

    /// Puts the shard and the common start into `plan`. A shard measures a fixed number of
    /// repetitions (the first look): more looks would be decided by each shard's own noise,
    /// and the shards' repetitions would no longer line up. Its thresholds wait for the merge.
    pub fn apply(&self, plan: &mut Plan, base_ref: Option<&str>) -> anyhow::Result<()> {
        plan.shard = self.shard()?;
        if let Some(shard) = plan.shard {
            anyhow::ensure!(
                base_ref.is_none(),
                "--shard {shard} with a same-runner A/B: an A/B measures both sides on one machine, which is its point; shard a run against a stored baseline instead"
            );
            if matches!(plan.workload.repetitions, crate::config::Repetitions::Auto) {
                eprintln!(
                    "note: a shard measures a fixed number of repetitions: `repetitions: auto` runs its pilot of {} (set workload.repetitions for more)",
                    crate::config::Repetitions::PILOT
                );
            }
            plan.workload.repetitions = crate::config::Repetitions::Fixed(plan.workload.repetitions.first());
            plan.compare.extend.max_looks = Some(1);
            // A shard's part of the load is not the load the thresholds were written for (a
            // throughput limit would fail every shard): they are checked on the merge.
            if !plan.thresholds.is_empty() {
                eprintln!(
                    "note: the config's thresholds are checked on the merged figures (`mcp-perfcheck merge --config`), not on one shard's"
                );
                plan.thresholds.clear();
            }
        }
        if let Some(start) = self.start_at {
            anyhow::ensure!(
                base_ref.is_none(),
                "--start-at with a same-runner A/B: the two sides take turns, they do not start together"
            );
            let first_warmup = plan.workload.scenarios.first().map_or(Duration::ZERO, |s| s.model().warmup());
            let at = start.resolve(SystemTime::now(), self.slot_gap + first_warmup);
            let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
            eprintln!(
                "mcp-perfcheck: the first measured window starts at {} (in {:.1} s)",
                humantime::format_rfc3339_millis(at),
                wait.as_secs_f64()
            );
            plan.start = Some(CommonStart { at, gap: self.slot_gap });
        }
        Ok(())
    }
}

/// `merge`: reads every shard's file, merges them, checks the config's thresholds on the
/// merged figures when given the config, writes the merged file and prints its report.
pub async fn merge(files: &[PathBuf], out: &Path, config: Option<&Path>, format: Format) -> anyhow::Result<Outcome> {
    let exporter = exporter(format, None)?;
    let shards = files
        .iter()
        .map(|path| Ok(ShardFile { name: path.display().to_string(), results: Results::load(path)? }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let plan = config.map(|c| load_plan(Some(c))).transpose()?;
    let mut merged = crate::results::merge(shards).context("cannot merge these shards")?;
    let results = &mut merged.results;
    if let Some(plan) = &plan {
        let hash = &results.sharding.as_ref().expect("a merged file records its shards").config_hash;
        anyhow::ensure!(
            *hash == plan.config_hash,
            "{}: not the config the shards ran (its hash is {:.12}…, theirs {:.12}…)",
            plan.source,
            plan.config_hash,
            hash
        );
        results.thresholds = thresholds::evaluate(results, &plan.thresholds, plan.compare.latency);
    } else if merged.shard_thresholds_dropped {
        merged.notes.push(
            "each shard's thresholds held or failed on its own part of the load and are left out: give --config to check them on the merged figures"
                .into(),
        );
    } else {
        merged
            .notes
            .push("no --config: the config's thresholds, if it has any, are not checked on the merged figures".into());
    }
    for note in &merged.notes {
        super::print_labelled("note", note);
    }
    results.save(out)?;
    let shards = results.sharding.as_ref().map_or(0, |s| s.count);
    eprintln!("merged {shards} shards into {}", out.display());
    print!("{}", exporter.run(results)?);
    Ok(match (&results.failure, results.thresholds.iter().any(|t| !t.held)) {
        (Some(_), _) => Outcome::Error,
        (None, true) => Outcome::Fail,
        (None, false) => Outcome::Pass,
    })
}
