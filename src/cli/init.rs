//! `mcp-perfcheck init`: a starter `perf.yaml` from what a server answers. The server is run
//! once as a quick probe (every listed tool, arguments from its schema), and the config is
//! written from the tools it kept and left out and what the probe measured of each.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use super::quick::{HttpAccess, QuickArgs};
use crate::config::starter::{self, Starter, StarterServer, StarterTool};
use crate::config::{Config, HumanDuration};
use crate::load::{self, Discovery, ListedTool, Progress};
use crate::results::Results;

/// The Action workflow `--workflow` writes (docs/workflows/perf-pull-request.yml).
const WORKFLOW: &str = include_str!("../../docs/workflows/perf-pull-request.yml");
const WORKFLOW_PATH: &str = ".github/workflows/perf.yml";

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("target").args(["command", "url"]).multiple(true).required(true))]
pub struct InitArgs {
    /// The stdio server to launch (after `--`); with --url, the command that starts it.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// A Streamable HTTP endpoint: already running, or started by the command after `--`.
    #[arg(long)]
    pub url: Option<String>,
    /// Where to write the config.
    #[arg(long, short, default_value = "perf.yaml")]
    pub out: PathBuf,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
    /// Also write .github/workflows/perf.yml, running the Action on pull requests.
    #[arg(long)]
    pub workflow: bool,
    /// How long the probe run measures (its p99 and errors suggest the thresholds).
    #[arg(long, default_value = "10s", value_parser = HumanDuration::parse)]
    pub probe: HumanDuration,
    /// `workload.repetitions` of the written config (a number, or auto).
    #[arg(long, default_value = "auto", value_parser = repetitions)]
    pub repetitions: String,
    /// The measured window of the written config's steady scenario.
    #[arg(long, default_value = "4s", value_parser = HumanDuration::parse)]
    pub duration: HumanDuration,
    /// The warm-up of the written config's steady scenario.
    #[arg(long, default_value = "1s", value_parser = HumanDuration::parse)]
    pub warmup: HumanDuration,
    /// How long the server may take to start and answer `initialize`.
    #[arg(long, default_value = "60s", value_parser = HumanDuration::parse)]
    pub startup_timeout: HumanDuration,
    #[command(flatten)]
    pub access: HttpAccess,
}

fn repetitions(text: &str) -> Result<String, String> {
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n.to_string()),
        _ if text == "auto" => Ok(text.to_string()),
        _ => Err(format!("expected a number of repetitions or `auto`, got `{text}`")),
    }
}

pub async fn init(args: InitArgs) -> anyhow::Result<Outcome> {
    let workflow_path = args.out.parent().unwrap_or(Path::new("")).join(WORKFLOW_PATH);
    let targets: Vec<&Path> =
        std::iter::once(args.out.as_path()).chain(args.workflow.then_some(workflow_path.as_path())).collect();
    if !args.force
        && let Some(existing) = targets.iter().find(|p| p.exists())
    {
        anyhow::bail!("{} exists: pass --force to overwrite it (nothing was written)", existing.display());
    }
    let (results, discovery) = probe(&args).await?;
    if let Some(f) = &results.failure {
        anyhow::bail!("the probe run failed, nothing was written: {}", f.message);
    }
    let discovery = discovery.context("the probe run listed no tools")?;
    let starter = starter_of(&args, &results, &discovery)?;
    let text = starter::render(&starter);
    // What is written must load as a config, whatever the server said.
    Config::from_yaml(&text, &args.out.display().to_string())
        .context("the written config does not load (a bug in init: please report it)")?;
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "wrote {}: {} tool(s) in the steady mix, {} left out (commented), thresholds from a {} probe",
        args.out.display(),
        starter.tools.len(),
        starter.left_out.len(),
        args.probe
    );
    if args.workflow {
        if let Some(dir) = workflow_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let config = args.out.file_name().map_or("perf.yaml".into(), |n| n.to_string_lossy().into_owned());
        let workflow = WORKFLOW.replace("config: perf.yaml", &format!("config: {config}"));
        std::fs::write(&workflow_path, workflow).with_context(|| format!("writing {}", workflow_path.display()))?;
        eprintln!("wrote {}: the Action on every pull request", workflow_path.display());
    }
    eprintln!("run it: mcp-perfcheck run --config {}", args.out.display());
    Ok(Outcome::Pass)
}

/// One repetition of every listed tool for `--probe`, and what the discovery found.
async fn probe(args: &InitArgs) -> anyhow::Result<(Results, Option<Discovery>)> {
    let quick = QuickArgs {
        command: args.command.clone(),
        url: args.url.clone(),
        duration: args.probe,
        warmup: HumanDuration(std::time::Duration::from_secs(1)),
        concurrency: None,
        rate: None,
        repetitions: 1,
        tools: Vec::new(),
        access: args.access.clone(),
        timeout: HumanDuration(std::time::Duration::from_secs(10)),
        startup_timeout: args.startup_timeout,
        print_config: false,
    };
    let (config, _) = quick.config()?;
    let self_exe = std::env::current_exe().context("cannot locate the mcp-perfcheck executable")?;
    let plan = config.into_plan(super::quick::SOURCE.to_string(), &self_exe, Path::new("."));
    eprintln!("mcp-perfcheck init: probing `{}` for {}", plan.server, args.probe);
    let cancel = CancellationToken::new();
    tokio::spawn(super::cancel_on_signal(cancel.clone()));
    let mut view = super::progress::ProgressView::new();
    let mut discovery = None;
    let results = load::execute(&plan, None, &cancel, &mut |event| {
        if let Progress::Discovered { discovery: d, .. } = &event {
            discovery = Some((*d).clone());
        }
        if !matches!(event, Progress::RepetitionFinished { .. }) {
            view.engine(&event);
        }
        ControlFlow::Continue(())
    })
    .await;
    Ok((results, discovery))
}

fn starter_of(args: &InitArgs, results: &Results, discovery: &Discovery) -> anyhow::Result<Starter> {
    let rep = results.scenarios.first().and_then(|s| s.repetitions.first());
    let measured = |tool: &ListedTool| {
        let name = format!("tools/call:{}", tool.name());
        rep.and_then(|r| r.operations.iter().find(|o| o.name == name))
    };
    let starter_tool = |tool: &ListedTool, with_figures: bool| {
        let op = measured(tool).filter(|_| with_figures);
        StarterTool {
            name: tool.name().to_string(),
            arguments: tool.entry.arguments.clone(),
            invented: tool.invented.clone(),
            p99_us: op.filter(|o| o.count > 0).map(|o| o.latency_us.p99),
            error_rate: op.filter(|o| o.count > 0).map(|o| o.error_count() as f64 / o.count as f64),
        }
    };
    let calls: u64 = rep.map_or(0, |r| r.operations.iter().map(|o| o.count).sum());
    let measured_s = rep.map_or(0.0, |r| r.measured_s);
    Ok(Starter {
        server: StarterServer {
            command: args.command.clone(),
            url: args.url.clone(),
            headers: args.access.header_sources()?,
            ca_file: args.access.ca_file.as_ref().map(|ca| ca_file_from(&args.out, ca)).transpose()?,
            startup_timeout: args.startup_timeout.to_string(),
        },
        tools: discovery.kept.iter().map(|t| starter_tool(t, true)).collect(),
        left_out: discovery.left_out.iter().map(|l| (starter_tool(&l.tool, false), l.why.clone())).collect(),
        probe: args.probe.to_string(),
        probe_calls_per_s: if measured_s > 0.0 { calls as f64 / measured_s } else { 0.0 },
        repetitions: args.repetitions.clone(),
        warmup: args.warmup.to_string(),
        duration: args.duration.to_string(),
    })
}

/// `--ca-file` as the written config must say it: a config's `ca_file` is relative to the
/// config, the flag to the working directory. Kept as given when both are the same directory,
/// made absolute otherwise (the probe has just read it, so it exists).
fn ca_file_from(out: &Path, ca: &Path) -> anyhow::Result<String> {
    let beside = out.parent().is_none_or(|dir| dir.as_os_str().is_empty() || dir == Path::new("."));
    let path = if ca.is_absolute() || beside {
        ca.to_path_buf()
    } else {
        ca.canonicalize().with_context(|| format!("--ca-file {}", ca.display()))?
    };
    path.to_str().map(str::to_string).context("--ca-file: the path is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_file_is_written_relative_to_the_config_or_absolute() {
        let here = Path::new("Cargo.toml");
        assert_eq!(ca_file_from(Path::new("perf.yaml"), here).unwrap(), "Cargo.toml");
        assert_eq!(ca_file_from(Path::new("./perf.yaml"), here).unwrap(), "Cargo.toml");
        let elsewhere = ca_file_from(Path::new("sub/perf.yaml"), here).unwrap();
        assert_eq!(Path::new(&elsewhere), here.canonicalize().unwrap());
        assert_eq!(ca_file_from(Path::new("sub/perf.yaml"), Path::new("/etc/ca.pem")).unwrap(), "/etc/ca.pem");
        assert!(ca_file_from(Path::new("sub/perf.yaml"), Path::new("missing.pem")).is_err());
    }
}
