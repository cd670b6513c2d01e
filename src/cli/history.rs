//! `mcp-perfcheck history`: the runs of many commits (results files, or a baseline store's),
//! their series and change points, a capacity plan, the dashboard, and an alerting exit code.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Outcome;
use crate::config::{Config, HumanDuration, Percent, Rate};
use crate::history::{self, History, Options, PlanRequest, Run, Slo, State};
use crate::report::Format;
use crate::results::Results;

#[derive(clap::Args)]
pub struct HistoryArgs {
    /// Results files, or directories of them, one run a commit (ordered by the commit's date
    /// when the repository here knows it, else by when the run started). Without any, the runs
    /// of the config's baseline store (`git-branch`, in its base branch's first-parent order,
    /// or `artifact`).
    #[arg(value_name = "RESULTS")]
    pub results: Vec<PathBuf>,
    /// The config whose `baseline:` store holds the runs.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The newest runs to read from a store.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// How to print the history on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the HTML dashboard (one self-contained page) to this file.
    #[arg(long, value_name = "FILE")]
    pub dashboard: Option<PathBuf>,
    /// The smallest change reported (relative; error rates: 0.1 percentage point).
    #[arg(long, default_value = "3%", value_parser = Percent::parse)]
    pub min_magnitude: Percent,
    /// Seeds the permutation tests: the same history and seed give the same change points.
    #[arg(long, default_value_t = crate::stats::ChangePointSettings::DEFAULT.seed)]
    pub seed: u64,
    /// Keep what this analysis found in FILE and, when FILE exists, search each series only
    /// after the change points it recorded (a new commit costs its last segment, not the
    /// whole history).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Plan instances for this peak rate (e.g. 5000/s) from the breakpoint scenarios'
    /// capacity since their last change point.
    #[arg(long, value_parser = Rate::parse)]
    pub plan: Option<Rate>,
    /// With --plan: judge capacity by this SLO instead of each scenario's breakpoint limits,
    /// e.g. "p99<50ms" or "p99<50ms,error_rate<1%".
    #[arg(long, requires = "plan", value_parser = parse_slo)]
    pub slo: Option<Slo>,
    /// With --plan: room above the peak.
    #[arg(long, default_value = "30%", value_parser = Percent::parse)]
    pub headroom: Percent,
    /// With --plan: what one instance costs an hour (e.g. 0.34), for the plan's cost.
    #[arg(long, requires = "plan", value_parser = parse_price)]
    pub price: Option<f64>,
    /// Exit 1 when a change point that starts within the newest N commits is a regression of a
    /// gating metric (`compare.gate` of --config, else the default gate; capacity and recovery
    /// always) beyond its minimum effect (`compare.min_effect`): `recent:N`, the alert of a
    /// scheduled workflow.
    #[arg(long, value_name = "recent:N", value_parser = parse_recent)]
    pub fail_on_change: Option<usize>,
}

pub async fn history(args: HistoryArgs) -> anyhow::Result<Outcome> {
    let (source, runs, notes) = gather(&args).await?;
    // The policy's gate says which regressions alert; the config's when given.
    let policy = match &args.config {
        Some(path) => {
            let (config, _) = Config::from_path(path)?;
            super::policy_of(&config.compare, Some(&config.workload))
        }
        None => crate::stats::Policy::DEFAULT,
    };
    anyhow::ensure!(!runs.is_empty(), "no runs to read from {source}");
    let state = match &args.state {
        Some(path) if path.exists() => Some(read_state(path)?),
        _ => None,
    };
    let mut options = Options { slo: args.slo, policy, ..Options::default() };
    options.change_points.min_magnitude = args.min_magnitude.fraction();
    options.change_points.seed = args.seed;
    let mut h = history::analyse(source, &runs, &options, state.as_ref());
    h.notes.splice(0..0, notes);
    if let Some(rate) = args.plan {
        let request = PlanRequest {
            rate: rate.per_second(),
            headroom: args.headroom.fraction(),
            price_per_hour: args.price,
            slo: args.slo,
        };
        h.plans = history::plan(&h, &request).map_err(anyhow::Error::msg)?;
    }
    if let Some(path) = &args.state {
        let text = serde_json::to_string_pretty(&history::state_of(&h))? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write the state {}", path.display()))?;
    }
    if let Some(path) = &args.dashboard {
        std::fs::write(path, history::render(&h, Format::Html)?)
            .with_context(|| format!("cannot write the dashboard {}", path.display()))?;
        eprintln!("dashboard written to {}", path.display());
    }
    print!("{}", history::render(&h, args.format)?);
    Ok(alert(&h, args.fail_on_change))
}

/// Exit 1 when a series' regression began within the newest `recent` commits.
fn alert(h: &History, recent: Option<usize>) -> Outcome {
    let Some(n) = recent else { return Outcome::Pass };
    let found: Vec<String> = h
        .series
        .iter()
        .filter_map(|s| {
            s.recent_regression(n).map(|c| {
                format!(
                    "{} {} {} {:+.1}% at {}",
                    s.scenario,
                    s.operation,
                    s.metric.label(),
                    c.change * 100.0,
                    crate::results::short_commit(&c.commit)
                )
            })
        })
        .collect();
    if found.is_empty() {
        return Outcome::Pass;
    }
    eprintln!(
        "{}",
        crate::report::inert::document(&format!("regression(s) in the newest {n} commit(s): {}", found.join("; ")))
    );
    Outcome::Fail
}

/// The runs, where they came from, and what was left out.
async fn gather(args: &HistoryArgs) -> anyhow::Result<(String, Vec<Run>, Vec<String>)> {
    if !args.results.is_empty() {
        let (runs, notes) = from_files(&args.results)?;
        return Ok((format!("{} results file(s)", runs.len()), runs, notes));
    }
    let path = args.config.as_deref().context("give results files, or a --config with a store of past runs")?;
    let (config, dir) = Config::from_path(path)?;
    let stored = past_runs(&config, &dir, path)?.history(args.limit).await?;
    let mut notes = stored.notes;
    let mut runs = Vec::with_capacity(stored.runs.len());
    let parsed = parse_all(stored.runs.iter().map(|r| r.json.as_str()).collect());
    for (r, results) in stored.runs.iter().zip(parsed) {
        match results {
            Ok(results) => runs.push(Run { commit: r.commit.clone(), date: r.date.clone(), results }),
            Err(e) => notes.push(format!("the run of {} is not readable, left out: {e:#}", r.commit)),
        }
    }
    Ok((stored.source, runs, notes))
}

/// The config's store of past runs (`history:`, else a git-branch or artifact `baseline:`).
pub(super) fn past_runs(config: &Config, dir: &Path, path: &Path) -> anyhow::Result<crate::baseline::Store> {
    let Some(store) = config.history_in(dir) else {
        anyhow::bail!(
            "{}: no store of past runs: add `history: {{store: git-branch}}` (or a git-branch or artifact `baseline:`)",
            path.display()
        );
    };
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(crate::baseline::Store::new(&store, &cwd))
}

/// Parses results texts on every core (a history reads many files), in order.
fn parse_all(texts: Vec<&str>) -> Vec<anyhow::Result<Results>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = texts.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|t| Results::figures_from_json(t)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("parsing does not panic")).collect()
    })
}

/// Results files (and the `*.json` in directories), ordered by their commit's date when this
/// repository knows the commit, then by when the run started.
fn from_files(paths: &[PathBuf]) -> anyhow::Result<(Vec<Run>, Vec<String>)> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read the directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(p.clone());
        }
    }
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).with_context(|| format!("cannot read results file {}", f.display())))
        .collect::<anyhow::Result<_>>()?;
    let parsed = parse_all(texts.iter().map(String::as_str).collect());
    let mut notes = Vec::new();
    let mut runs = Vec::new();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into()))
        .collect();
    for ((file, name), results) in files.iter().zip(&names).zip(parsed) {
        match results {
            Ok(results) => {
                // A run with no commit is named by its file: by its name, which a shortened
                // label still shows, unless another file has the same name.
                let unique = names.iter().filter(|n| *n == name).count() == 1;
                let label = if unique { name.clone() } else { file.display().to_string() };
                let commit = results.git_sha.clone().unwrap_or(label);
                runs.push(Run { commit, date: None, results });
            }
            Err(e) => notes.push(format!("{} is not a usable results file, left out: {e:#}", file.display())),
        }
    }
    let dates = commit_dates(&runs);
    for r in &mut runs {
        r.date = dates.get(&r.commit).cloned().or_else(|| Some(r.results.timestamp.clone()));
    }
    runs.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.results.timestamp.cmp(&b.results.timestamp)));
    Ok((runs, notes))
}

/// The committer dates of the runs' commits this repository has, in one `git log`.
fn commit_dates(runs: &[Run]) -> std::collections::HashMap<String, String> {
    let shas: Vec<&str> = runs.iter().filter_map(|r| r.results.git_sha.as_deref()).collect();
    if shas.is_empty() {
        return Default::default();
    }
    let mut cmd = std::process::Command::new("git");
    cmd.args(["log", "--no-walk=unsorted", "--ignore-missing", "--format=%H%x09%cI"]).args(&shas);
    let Ok(out) = cmd.stderr(std::process::Stdio::null()).output() else { return Default::default() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect()
}

fn read_state(path: &Path) -> anyhow::Result<State> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the state {}", path.display()))?;
    let state: State = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a history state file (from `history --state`)", path.display()))?;
    anyhow::ensure!(
        state.schema == history::STATE_SCHEMA,
        "{}: schema is `{}`, this version reads `{}`",
        path.display(),
        state.schema,
        history::STATE_SCHEMA
    );
    Ok(state)
}

/// `p99<50ms`, `error_rate<1%`, or both separated by a comma.
fn parse_slo(text: &str) -> Result<Slo, String> {
    let mut slo = Slo::default();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (name, value) =
            term.split_once('<').ok_or_else(|| format!("`{term}`: write the SLO as p99<50ms or error_rate<1%"))?;
        match name.trim() {
            "p99" => slo.p99_us = Some(HumanDuration::parse(value)?.0.as_secs_f64() * 1e6),
            "error_rate" => slo.error_rate = Some(Percent::parse(value)?.fraction()),
            other => {
                return Err(format!(
                    "`{other}`: an SLO names p99 or error_rate (a breakpoint run's seconds keep those)"
                ));
            }
        }
    }
    if slo.p99_us.is_none() && slo.error_rate.is_none() {
        return Err("an empty SLO: write p99<50ms, error_rate<1%, or both".into());
    }
    Ok(slo)
}

fn parse_price(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches("/h");
    match number.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(format!("`{text}`: a price an hour, e.g. 0.34 or 0.34/h")),
    }
}

fn parse_recent(text: &str) -> Result<usize, String> {
    text.strip_prefix("recent:")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}`: write recent:N, e.g. recent:5 for the newest five commits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slos_prices_and_windows_are_read_or_refused_clearly() {
        let slo = parse_slo("p99<50ms, error_rate<1%").unwrap();
        assert_eq!((slo.p99_us, slo.error_rate), (Some(50_000.0), Some(0.01)));
        assert!(parse_slo("p50<1ms").unwrap_err().contains("p99 or error_rate"));
        assert!(parse_slo("").is_err() && parse_slo("p99=5ms").is_err());
        assert_eq!(parse_price("0.34/h"), Ok(0.34));
        assert!(parse_price("cheap").is_err());
        assert_eq!(parse_recent("recent:5"), Ok(5));
        assert!(parse_recent("5").is_err() && parse_recent("recent:0").is_err());
    }
}
