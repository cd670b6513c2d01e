//! The command line: clap definitions and thin glue from arguments to the library.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod calibrate;
mod ci;
mod history;
mod init;
mod progress;
mod quick;
mod shard;

pub use ci::publish_offline;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::baseline;
use crate::config::{Config, Percent, Plan};
use crate::load::{self, Progress};
use crate::report::{self, Format};
use crate::results::{FailureKind, Results};
use crate::server::{self, ServeOptions};
use crate::stats::{self, Policy, Verdict, thresholds};

/// Where `calibrate` writes and `compare` looks for the calibration by default.
const CALIBRATION_FILE: &str = "mcp-perfcheck-calibration.json";

const EXIT_CODES: &str = "\
Exit codes:
  0  pass (for compare: no significant regression)
  1  a significant regression (or a failed threshold)
  2  error: bad config, server failed to start or crashed, unreadable input, interrupted";

#[derive(Parser)]
#[command(name = "mcp-perfcheck", version, about = "A performance regression gate for MCP servers", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build and launch an MCP server, drive the configured workload, write the results.
    ///
    /// With no --config, checks the built-in reference server (the embedded default). Quick
    /// mode needs no config: `run -- CMD ARGS…` launches a stdio server, `run --url URL` targets
    /// a Streamable HTTP one; every tool it lists is called.
    #[command(after_help = EXIT_CODES)]
    Run {
        /// The YAML config (default: the embedded default config).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Where to write the results file.
        #[arg(long, short, default_value = "mcp-perfcheck-results.json")]
        out: PathBuf,
        /// How to print the summary on stdout.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Same-runner A/B: also build and measure this git ref (checked out in a temporary
        /// worktree), interleaving its repetitions with the head's; the results file holds both
        /// and `compare FILE` decides. Default: `baseline.ref` when `baseline.store` is `ab`.
        #[arg(long, requires = "config")]
        base_ref: Option<String>,
        /// Templates to use instead of the embedded ones (files named like them, e.g.
        /// `comment.md.tera`, `compare.txt.tera`, `report.html.tera`).
        #[arg(long)]
        template_dir: Option<PathBuf>,
        /// Serve the generator's own figures in the Prometheus format at http://ADDR/metrics
        /// while the run measures (port 0: any free port; the address is printed).
        #[arg(long, value_name = "ADDR")]
        live_metrics: Option<std::net::SocketAddr>,
        #[command(flatten)]
        quick: quick::QuickArgs,
        #[command(flatten)]
        shard: shard::ShardArgs,
    },
    /// Merge the results files of a sharded run (`run --shard K/N`, one per shard) into one,
    /// exactly: histograms added bucket by bucket, counts and rates summed, series aligned on
    /// the wall clock. Refused (exit 2) unless the files are every shard of one config.
    #[command(after_help = EXIT_CODES)]
    Merge {
        /// Every shard's results file, in any order.
        #[arg(required = true, value_name = "SHARD.json")]
        shards: Vec<PathBuf>,
        /// Where to write the merged results.
        #[arg(long, short, default_value = "mcp-perfcheck-results.json")]
        out: PathBuf,
        /// The config the shards ran (checked against their config hash): its thresholds are
        /// checked on the merged figures.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// How to print the merged run's summary on stdout.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compare two results files (base, then head), the two sides of one A/B results file, or
    /// one results file with the baseline of the config's `baseline.store`, and decide.
    #[command(after_help = EXIT_CODES)]
    Compare {
        /// The base results; or, alone, an A/B results file (`run --base-ref`) or the head
        /// results to compare with the configured baseline store.
        base: PathBuf,
        head: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Take `compare:` settings (alpha, min_effect) and `baseline:` from this config.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Significance level (overrides the config; default 0.05).
        #[arg(long)]
        alpha: Option<f64>,
        /// Minimum effect of latency and throughput, e.g. 5% (overrides the config; default 5%).
        #[arg(long, value_parser = Percent::parse)]
        min_effect: Option<Percent>,
        /// Fail on a regression even when base and head ran on different machines (by default
        /// such a comparison is advisory and exits 0).
        #[arg(long)]
        strict_environment: bool,
        /// The calibration to cite (default: mcp-perfcheck-calibration.json when it exists).
        #[arg(long)]
        calibration: Option<PathBuf>,
        /// Templates to use instead of the embedded ones (files named like them, e.g.
        /// `comment.md.tera`, `compare.txt.tera`, `report.html.tera`).
        #[arg(long)]
        template_dir: Option<PathBuf>,
        /// When to exit 1: on a regression (default), also on an inconclusive (or advisory)
        /// comparison, or never (an error still exits 2).
        #[arg(long, value_enum, default_value_t = ci::FailOn::Regression)]
        fail_on: ci::FailOn,
    },
    /// Measure the gate itself: A/A comparisons of one build, giving the false-alarm rate and
    /// the smallest change each metric can show at the current settings.
    Calibrate {
        /// The YAML config (default: the embedded default config).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// How many A/A comparisons (each runs the configured repetitions twice).
        #[arg(long, short = 'n', default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        comparisons: u32,
        #[arg(long, short, default_value = CALIBRATION_FILE)]
        out: PathBuf,
        /// Also keep each A/A comparison's results (an A/B results file, `compare` reads it)
        /// in this directory, as `aa-1.json`, `aa-2.json`, ...
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// The whole pipeline inside a GitHub Actions workflow: measure (A/B against the pull
    /// request's base, or the configured baseline store), compare, report (job summary, sticky
    /// PR comment, commit status), set the step outputs, exit per --fail-on.
    #[command(after_help = EXIT_CODES)]
    Ci(ci::CiArgs),
    /// Read the runs of many commits (results files, or the config's baseline store) as series:
    /// change points per metric, trends, a capacity plan from breakpoint scenarios, an HTML
    /// dashboard; exits 1 with --fail-on-change when a recent change is a regression.
    #[command(after_help = EXIT_CODES)]
    History(history::HistoryArgs),
    /// Keep or inspect the baseline of the config's `baseline.store`.
    Baseline {
        #[command(subcommand)]
        action: BaselineAction,
    },
    /// Render one results file.
    Report {
        results: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Templates to use instead of the embedded ones (files named like them, e.g.
        /// `comment.md.tera`, `compare.txt.tera`, `report.html.tera`).
        #[arg(long)]
        template_dir: Option<PathBuf>,
    },
    /// Run the reference MCP server over stdio, or Streamable HTTP with --http.
    Serve {
        /// Serve Streamable HTTP at this address instead of stdio (port 0: any free port); the
        /// endpoint is printed on stdout as `listening on http://ADDR/mcp`.
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// Also serve the fixtures of the official conformance suite (tools, prompts,
        /// resources, completion, logging), so that the suite can run against this server.
        #[arg(long)]
        conformance: bool,
        /// HTTP: a session with no request for this long is ended.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        session_idle: std::time::Duration,
        /// HTTP: also serve `POST /admin/breakers/{upstream}/{force_open|disable|metrics_only|normal|reset}`,
        /// the operator's switches of the runtime's circuit breakers.
        #[arg(long, requires = "http")]
        admin: bool,
        /// HTTP: how long in-flight calls get to finish after SIGTERM or Ctrl-C.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        shutdown_grace: std::time::Duration,
        /// HTTP: a Host accepted besides the loopback names, as `name` (any port) or
        /// `name:port` (a load balancer's, say); repeatable. DNS rebinding protection stays on
        /// for every other name.
        #[arg(long = "allowed-host", value_name = "HOST", env = "MCP_SERVE_ALLOWED_HOSTS", value_delimiter = ',')]
        allowed_hosts: Vec<String>,
        /// HTTP: an Origin accepted besides the loopback ones (`https://app.example`,
        /// `https://app.example:*`); repeatable.
        #[arg(
            long = "allowed-origin",
            value_name = "ORIGIN",
            env = "MCP_SERVE_ALLOWED_ORIGINS",
            value_delimiter = ','
        )]
        allowed_origins: Vec<String>,
        /// HTTP: a proxy (its IP address) whose `X-Forwarded-Host` is taken as the request's
        /// host; from any other peer `X-Forwarded-*` headers are dropped unread. Repeatable.
        #[arg(long = "trusted-proxy", value_name = "IP", env = "MCP_SERVE_TRUSTED_PROXIES", value_delimiter = ',')]
        trusted_proxies: Vec<std::net::IpAddr>,
        /// HTTP: how often `/readyz` probes the dependencies (each upstream's breaker and
        /// health path, Redis, the event loop).
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        ready_interval: std::time::Duration,
        /// HTTP: after SIGTERM, how long `/readyz` answers 503 while calls are still served (set
        /// it to your balancer's check interval × its fall count), before in-flight calls drain.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        drain_delay: std::time::Duration,
        /// The largest message taken, in bytes (a stdio line, an HTTP body); a larger one is
        /// answered with a JSON-RPC error (HTTP 413) carrying its id when the id comes first.
        #[arg(long, default_value_t = server::DEFAULT_MAX_MESSAGE_BYTES)]
        max_message_bytes: usize,
        /// HTTP: keep handshake-era (2025-11-25) sessions in this Redis (`redis://HOST:PORT`),
        /// so that every instance behind a balancer serves every session, with no sticky
        /// routing. The stateless 2026-07-28 revision needs none.
        #[arg(long, value_name = "URL", env = "MCP_SERVE_SESSION_STORE", requires = "http")]
        session_store: Option<String>,
        /// Multiply the work of every `compute` call (to try the gate on a slower build; 1.1 is
        /// 10% more work).
        #[arg(long, default_value_t = 1.0, value_parser = positive_multiplier)]
        work_multiplier: f64,
        /// Point every upstream of the runtime at this URL (an `mcp-perfcheck upstream`), for
        /// the `lookup`, `batch_lookup` and `aggregate` tools.
        #[arg(long)]
        upstream: Option<String>,
        /// The runtime's YAML config instead of the embedded one (see the README);
        /// MCP_RUNTIME_UPSTREAM_<NAME>_URL and MCP_RUNTIME_REDIS_URL apply on top.
        #[arg(long)]
        runtime_config: Option<PathBuf>,
    },
    /// Write a starter config (perf.yaml) from what a server answers: its tools with arguments
    /// from their schemas, a steady scenario, commented spike and breakpoint scenarios, and
    /// thresholds from a short probe run. Never overwrites a file without --force.
    #[command(after_help = EXIT_CODES)]
    Init(init::InitArgs),
    /// Print the JSON Schema of the config file (also at schema/perf.schema.json), for editors
    /// and validators.
    Schema,
    /// Print a shell completion script: `mcp-perfcheck completions bash > ~/.local/share/bash-completion/completions/mcp-perfcheck`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `mcp-perfcheck man | man -l -`; with --dir, write it and
    /// one page per command (`mcp-perfcheck-run.1`, …) there.
    Man {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the upstream simulator: the external API the reference server's tools call, made
    /// slow or broken on cue through its admin endpoint (see the README).
    Upstream {
        /// Where to listen (port 0: any free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Latency distribution: fixed:2ms, uniform:1ms..5ms or lognormal:2ms,0.5.
        #[arg(long, default_value = "fixed:1ms")]
        latency: crate::upstream::Latency,
        /// Share of requests answered with --error-status (0.01 = 1%).
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
        #[arg(long, default_value_t = 503)]
        error_status: u16,
        /// Seeds every draw, so a run's answers are reproducible.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum BaselineAction {
    /// Store a results file as the baseline (file: write it to `baseline.path`; git-branch:
    /// commit it to the data branch, pushed only from the default branch).
    Save {
        #[arg(default_value = "mcp-perfcheck-results.json")]
        results: PathBuf,
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Find the baseline a head would be compared with, say where it came from, and optionally
    /// write it out.
    Show {
        #[arg(long, short)]
        config: PathBuf,
        /// The head commit (default: HEAD).
        #[arg(long)]
        head: Option<String>,
        /// Write the baseline results here.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// The exit policy: every command ends in one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Error,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(match o {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Error => 2,
        })
    }
}

/// Parses the command line, runs the command, maps the result to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { Outcome::Error.into() } else { Outcome::Pass.into() };
        }
    };
    // A stdio server serves one connection: a single thread spares it the cross-thread wake-ups
    // of a multi-threaded runtime (see `server::serve_stdio`).
    let runtime = if matches!(cli.command, Command::Serve { http: None, .. }) {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Outcome::Error.into();
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            print_error(&format!("{e:#}"));
            Outcome::Error.into()
        }
    }
}

/// The longest error message printed, in characters: a message quotes names and text from
/// files and servers, and one forged name must not fill a log.
const MAX_ERROR_CHARS: usize = 4_096;

/// Prints `error: message` to stderr (see [`print_labelled`]).
fn print_error(message: &str) {
    print_labelled("error", message);
}

/// Prints `label: message` to stderr. The message may quote a server, a report, a store or a
/// shard's file: no line of it can act in a log, and it is cut to [`MAX_ERROR_CHARS`].
fn print_labelled(label: &str, message: &str) {
    let kept = crate::results::prefix(message, MAX_ERROR_CHARS);
    let text = match message.len() - kept.len() {
        0 => format!("{label}: {message}"),
        cut => format!("{label}: {kept}… ({cut} more bytes of this message left out)"),
    };
    eprintln!("{}", report::inert::document(&text));
}

async fn dispatch(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Run { config, out, format, base_ref, template_dir, live_metrics, quick, shard } => {
            let exporter = exporter(format, template_dir.as_deref())?;
            // Quick mode's flags stand for a config (kept, to print); otherwise the file's.
            let (mut plan, base_ref, quick_yaml) = if quick.is_given() {
                let (config, yaml) = quick.config()?;
                let self_exe = std::env::current_exe().context("cannot locate the mcp-perfcheck executable")?;
                (config.into_plan(quick::SOURCE.to_string(), &self_exe, Path::new(".")), None, Some(yaml))
            } else {
                (load_plan(config.as_deref())?, base_ref, None)
            };
            let ab_ref = base_ref.clone().or(match &plan.baseline {
                Some(crate::config::BaselineConfig::Ab { git_ref }) => Some(git_ref.clone()),
                _ => None,
            });
            shard.apply(&mut plan, ab_ref.as_deref())?;
            let live = match live_metrics {
                Some(addr) => Some(LiveView::start(addr).await?),
                None => None,
            };
            plan.live_detail = live.is_some();
            let outcome = run(&plan, &out, exporter.as_ref(), base_ref.as_deref(), live.as_ref()).await;
            LiveView::finish(live).await;
            let outcome = outcome?;
            match quick_yaml {
                Some(yaml) if quick.print_config => print!("{yaml}"),
                Some(_) => {
                    eprintln!("keep this check as a config: add --print-config and save what it prints as perf.yaml")
                }
                None => {}
            }
            Ok(outcome)
        }
        Command::Merge { shards, out, config, format } => shard::merge(&shards, &out, config.as_deref(), format).await,
        Command::Ci(args) => ci::ci(args).await,
        Command::History(args) => history::history(args).await,
        Command::Calibrate { config, comparisons, out, keep } => {
            calibrate::calibrate(config.as_deref(), comparisons as usize, &out, keep.as_deref()).await
        }
        Command::Compare {
            base,
            head,
            format,
            config,
            alpha,
            min_effect,
            strict_environment,
            calibration,
            template_dir,
            fail_on,
        } => {
            let exporter = exporter(format, template_dir.as_deref())?;
            let loaded = config.as_deref().map(Config::from_path).transpose()?;
            let settings = loaded.as_ref().map(|(c, _)| c.compare.clone()).unwrap_or_default();
            let mut policy = policy_of(&settings, loaded.as_ref().map(|(c, _)| &c.workload));
            policy.strict_environment |= strict_environment;
            if let Some(a) = alpha {
                anyhow::ensure!(a > 0.0 && a < 1.0, "--alpha must be between 0 and 1, got {a}");
                policy.alpha = a;
            }
            if let Some(m) = min_effect {
                policy.min_effect.latency = m.fraction();
                policy.min_effect.throughput = m.fraction();
            }
            let configured = loaded.is_some();
            let (base, head) = match head {
                Some(head) => (Results::load(&base)?, Results::load(&head)?),
                None => {
                    let mut head = Results::load(&base)?;
                    match (head.base_run.take(), loaded) {
                        (Some(base_run), _) => (*base_run, head),
                        (None, Some((config, dir))) if config.baseline.is_some() => {
                            let store = store(&config, &dir)?;
                            let baseline = store.load(head.git_sha.as_deref()).await?;
                            eprintln!("mcp-perfcheck: baseline from {}", baseline.source);
                            (baseline.results, head)
                        }
                        (None, _) => anyhow::bail!(
                            "{}: not an A/B results file (from `run --base-ref`): give the base and the head results, or a --config with a `baseline:` store",
                            base.display()
                        ),
                    }
                }
            };
            // Runs of the embedded default are judged as `run` judged them, its scenarios'
            // own gates included.
            if !configured && [&base, &head].iter().all(|r| r.config_source == crate::config::DEFAULT_SOURCE) {
                let embedded = crate::config::Config::embedded_default();
                policy.scenario_gates = policy_of(&embedded.compare, Some(&embedded.workload)).scenario_gates;
            }
            let comparison = decide(&base, &head, &policy, calibration.as_deref())?;
            let run_url = workflow_run_url();
            let view = report::Report {
                comparison: &comparison,
                base: &base,
                head: &head,
                run_url: run_url.as_deref(),
                trends: None,
            };
            let text = exporter.comparison(&view)?;
            print!("{}", if format == Format::Text && colour_wanted() { report::colour_text(&text) } else { text });
            Ok(match (comparison.verdict, fail_on) {
                (Verdict::Error, _) => Outcome::Error,
                (_, ci::FailOn::Never) => Outcome::Pass,
                (Verdict::Fail, _) if !comparison.advisory => Outcome::Fail,
                (Verdict::Fail | Verdict::Inconclusive, ci::FailOn::Inconclusive) => Outcome::Fail,
                _ => Outcome::Pass,
            })
        }
        Command::Baseline { action: BaselineAction::Save { results, config } } => {
            let (config, dir) = Config::from_path(&config)?;
            println!("{}", store(&config, &dir)?.save(&results)?);
            Ok(Outcome::Pass)
        }
        Command::Baseline { action: BaselineAction::Show { config, head, out } } => {
            let (config, dir) = Config::from_path(&config)?;
            let baseline = store(&config, &dir)?.load(head.as_deref()).await?;
            let probe = baseline.results;
            println!(
                "baseline from {}: commit {}, measured {}, {} scenario(s)",
                baseline.source,
                probe.git_sha.as_deref().unwrap_or("(none)"),
                probe.timestamp,
                probe.scenarios.len()
            );
            if let Some(out) = out {
                probe.save(&out)?;
                println!("written to {}", out.display());
            }
            Ok(Outcome::Pass)
        }
        Command::Report { results, format, template_dir } => {
            let exporter = exporter(format, template_dir.as_deref())?;
            let results = Results::load(&results)?;
            print!("{}", exporter.run(&results)?);
            Ok(Outcome::Pass)
        }
        Command::Serve {
            http,
            admin,
            conformance,
            session_idle,
            shutdown_grace,
            allowed_hosts,
            allowed_origins,
            trusted_proxies,
            ready_interval,
            drain_delay,
            max_message_bytes,
            session_store,
            work_multiplier,
            upstream,
            runtime_config,
        } => {
            let runtime = serve_runtime(upstream.as_deref(), runtime_config.as_deref())?;
            let options = ServeOptions { work_multiplier, runtime, conformance };
            let Some(listen) = http else {
                server::serve_stdio(options, max_message_bytes).await?;
                return Ok(Outcome::Pass);
            };
            let http = server::http::HttpOptions {
                listen,
                session_idle,
                shutdown_grace,
                admin,
                allowed_hosts,
                allowed_origins,
                trusted_proxies,
                ready_interval,
                drain_delay,
                max_body_bytes: max_message_bytes,
                session_store,
                ..Default::default()
            };
            let server = server::http::HttpServer::bind(options, http)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            // Registered before the address is announced: a SIGTERM right after it is a stop.
            let stopping = stop_signal();
            println!("listening on http://{}/mcp", server.addr());
            let stop = CancellationToken::new();
            let serving = tokio::spawn(server.serve(stop.clone()));
            stopping.await;
            eprintln!("mcp-perfcheck serve: stopping (in-flight calls get {shutdown_grace:?})");
            stop.cancel();
            serving.await.context("the HTTP server task")?;
            Ok(Outcome::Pass)
        }
        Command::Init(args) => init::init(args).await,
        Command::Schema => {
            print!("{}", crate::config::json_schema());
            Ok(Outcome::Pass)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "mcp-perfcheck", &mut std::io::stdout());
            Ok(Outcome::Pass)
        }
        Command::Man { dir } => {
            let command = <Cli as clap::CommandFactory>::command();
            match dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                    clap_mangen::generate_to(command, &dir)
                        .with_context(|| format!("writing the man pages to {}", dir.display()))?;
                }
                None => {
                    let mut page = Vec::new();
                    clap_mangen::Man::new(command).render(&mut page).context("rendering the man page")?;
                    std::io::Write::write_all(&mut std::io::stdout(), &page).context("writing the man page")?;
                }
            }
            Ok(Outcome::Pass)
        }
        Command::Upstream { listen, latency, error_rate, error_status, seed } => {
            if !(0.0..=1.0).contains(&error_rate) {
                anyhow::bail!("--error-rate must be in [0, 1], got {error_rate}");
            }
            let behaviour = crate::upstream::Behaviour { latency, error_rate, error_status };
            let config = crate::upstream::SimulatorConfig { listen, behaviour, seed };
            let simulator =
                crate::upstream::Simulator::start(config).await.with_context(|| format!("listening on {listen}"))?;
            let stopping = stop_signal();
            println!("listening on {}", simulator.url());
            stopping.await;
            simulator.stop().await;
            Ok(Outcome::Pass)
        }
    }
}

/// The exporter of `format`, with the templates of `template_dir` when given.
fn exporter(format: Format, template_dir: Option<&Path>) -> anyhow::Result<Box<dyn report::Exporter>> {
    match template_dir {
        Some(dir) => report::exporter_with_templates(format, dir),
        None => Ok(report::exporter(format)),
    }
}

/// Colour on standard output: only on a terminal, and never with `NO_COLOR` set (no-color.org).
fn colour_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The GitHub Actions run this process belongs to, from the variables Actions sets.
fn workflow_run_url() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Some(format!("{}/{}/actions/runs/{}", var("GITHUB_SERVER_URL")?, var("GITHUB_REPOSITORY")?, var("GITHUB_RUN_ID")?))
}

/// The config's baseline store; the repository is the current directory's.
fn store(config: &Config, config_dir: &Path) -> anyhow::Result<baseline::Store> {
    let Some(b) = config.baseline_in(config_dir) else { anyhow::bail!("the config has no `baseline:` section") };
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(baseline::Store::new(&b, &cwd))
}

/// `head` compared with `base`, citing the calibration at `calibration` (default: the
/// calibration file in the current directory, when there is one).
fn decide(
    base: &Results,
    head: &Results,
    policy: &Policy,
    calibration: Option<&Path>,
) -> anyhow::Result<stats::Comparison> {
    let mut comparison = stats::compare(base, head, policy);
    let default = Path::new(CALIBRATION_FILE);
    if let Some(path) = calibration.or_else(|| default.exists().then_some(default)) {
        comparison.calibration = Some(read_calibration(path)?.cite(&head.environment));
    }
    Ok(comparison)
}

/// The calibration file at `path`, checked.
fn read_calibration(path: &Path) -> anyhow::Result<stats::CalibrationRecord> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read calibration file {}", path.display()))?;
    let record: stats::CalibrationRecord = serde_json::from_str(&text).with_context(|| {
        format!("{} is not a usable calibration file (from `mcp-perfcheck calibrate`)", path.display())
    })?;
    anyhow::ensure!(
        record.schema == stats::CALIBRATION_SCHEMA,
        "{}: schema is `{}`, this version of mcp-perfcheck reads `{}`",
        path.display(),
        record.schema,
        stats::CALIBRATION_SCHEMA
    );
    Ok(record)
}

/// The plan of `config`, or of the embedded default.
fn load_plan(config: Option<&Path>) -> anyhow::Result<Plan> {
    let self_exe = std::env::current_exe().context("cannot locate the mcp-perfcheck executable")?;
    Ok(match config {
        Some(path) => {
            let (config, dir) = Config::from_path(path)?;
            config.into_plan(path.display().to_string(), &self_exe, &dir)
        }
        None => Plan::embedded_default(&self_exe),
    })
}

/// How comparisons of runs of this config decide: `compare`'s settings, and the scenarios
/// that name a gate of their own.
fn policy_of(c: &crate::config::CompareConfig, workload: Option<&crate::config::WorkloadConfig>) -> Policy {
    Policy {
        alpha: c.alpha,
        min_effect: min_effects(&c.min_effect),
        strict_environment: c.strict_environment,
        latency: c.latency,
        gate: stats::Gate::of(&c.gate),
        scenario_gates: workload
            .into_iter()
            .flat_map(|w| &w.scenarios)
            .filter_map(|s| {
                s.gate.as_ref().map(|g| stats::ScenarioGate { scenario: s.name.clone(), gate: stats::Gate::of(g) })
            })
            .collect(),
    }
}

fn positive_multiplier(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(m) if m.is_finite() && m > 0.0 => Ok(m),
        _ => Err(format!("expected a positive number such as 2 or 1.1, got `{s}`")),
    }
}

fn min_effects(c: &crate::config::MinEffectConfig) -> stats::MinEffects {
    stats::MinEffects {
        latency: c.latency.fraction(),
        throughput: c.throughput.fraction(),
        memory: c.memory.fraction(),
        cpu: c.cpu.fraction(),
        error_rate: c.error_rate.fraction(),
        error_ratio: c.error_ratio,
    }
}

/// `--live-metrics`: the figures and the endpoint serving them.
struct LiveView {
    metrics: std::sync::Arc<crate::live::LiveMetrics>,
    endpoint: crate::live::Endpoint,
}

impl LiveView {
    async fn start(addr: std::net::SocketAddr) -> anyhow::Result<LiveView> {
        let metrics = std::sync::Arc::new(crate::live::LiveMetrics::new());
        let endpoint = crate::live::Endpoint::start(addr, metrics.clone())
            .await
            .with_context(|| format!("--live-metrics: cannot listen on {addr}"))?;
        eprintln!("live metrics at http://{}/metrics", endpoint.addr());
        Ok(LiveView { metrics, endpoint })
    }

    async fn finish(view: Option<LiveView>) {
        if let Some(view) = view {
            view.endpoint.finish().await;
        }
    }
}

async fn run(
    plan: &Plan,
    out: &Path,
    exporter: &dyn report::Exporter,
    base_ref: Option<&str>,
    live: Option<&LiveView>,
) -> anyhow::Result<Outcome> {
    // `baseline.store: ab` makes every run an A/B against its ref, as --base-ref would.
    let base_ref = base_ref.or(match &plan.baseline {
        Some(crate::config::BaselineConfig::Ab { git_ref }) => Some(git_ref.as_str()),
        _ => None,
    });
    let results = measure(plan, out, base_ref, live.map(|l| &*l.metrics)).await?;
    if results.base_run.is_some() {
        eprintln!("both sides are in it: `mcp-perfcheck compare {}` decides", out.display());
    }
    print!("{}", exporter.run(&results)?);
    let base_failure = results.base_run.as_ref().and_then(|b| b.failure.as_ref());
    if let Some(f) = base_failure {
        let hint = if f.kind == FailureKind::ServerStart && plan.server.build.is_none() {
            " (the base checkout must provide the server: `server.build` builds it there)"
        } else {
            ""
        };
        print_error(&format!("the base side failed: {}{hint}", f.message));
    }
    let thresholds_failed = results.thresholds.iter().any(|t| !t.held);
    Ok(match results.failure.as_ref().or(base_failure) {
        Some(f) if f.kind == FailureKind::Aborted => Outcome::Fail,
        Some(_) => Outcome::Error,
        None if thresholds_failed => Outcome::Fail,
        None => Outcome::Pass,
    })
}

/// Measures `plan` (an A/B against `base_ref` when given: the ref checked out in a worktree for
/// the length of the run), writing the results to `out` after every repetition and at the end.
async fn measure(
    plan: &Plan,
    out: &Path,
    base_ref: Option<&str>,
    live: Option<&crate::live::LiveMetrics>,
) -> anyhow::Result<Results> {
    eprintln!("mcp-perfcheck: measuring `{}` ({})", plan.server, plan.source);
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let worktree = base_ref.map(|r| baseline::Worktree::create(&cwd, r)).transpose()?;
    let base_plan = worktree.as_ref().map(|wt| {
        let mut base = plan.rebased(wt.repo_root(), wt.path(), &cwd);
        base.source = format!("{} at {}", plan.source, crate::results::short_commit(&wt.sha));
        eprintln!("mcp-perfcheck: against the base {} checked out in {}", wt.sha, wt.path().display());
        base
    });
    if base_plan.is_none() && plan.compare.extend.max_looks.is_some_and(|m| m > 1) {
        eprintln!(
            "note: compare.extend applies to A/B runs (--base-ref, or baseline.store: ab); this run measures its planned repetitions"
        );
    }

    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));

    let mut save_error = None;
    let mut view = progress::ProgressView::new();
    let started = std::time::Instant::now();
    let mut planned = plan.workload.repetitions.first();
    let mut show = |event: Progress<'_>| match event {
        Progress::Building(_)
        | Progress::Tick { .. }
        | Progress::LooksEnded { .. }
        | Progress::Discovered { .. }
        | Progress::Aligned { .. } => {
            view.engine(&event);
            ControlFlow::Continue(())
        }
        Progress::Extending { more, .. } => {
            view.engine(&event);
            planned += more;
            ControlFlow::Continue(())
        }
        Progress::RepetitionFinished { scenario, repetition, results } => {
            view.finished(&report::progress_line(scenario, planned, repetition));
            // Written after every repetition, so that a later failure loses nothing.
            if let Err(e) = results.save(out) {
                save_error.get_or_insert(e);
            }
            match thresholds::abort_reason(results, &plan.thresholds, plan.compare.latency, started.elapsed()) {
                Some(reason) => ControlFlow::Break(reason),
                None => ControlFlow::Continue(()),
            }
        }
    };
    let mut on_event = |event: Progress<'_>| {
        if let Some(live) = live {
            live.observe(&event);
        }
        show(event)
    };
    let mut results = match (&base_plan, &worktree) {
        (Some(base), Some(wt)) => {
            let seed =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            let side = load::BaseSide { plan: base, git_sha: Some(wt.sha.clone()), seed };
            let mut planner = planner(plan);
            load::execute_ab(plan, side, extension(plan, true, &mut planner), &cancel, &mut on_event).await
        }
        _ => {
            let mut planner = planner(plan);
            load::execute(plan, extension(plan, false, &mut planner), &cancel, &mut on_event).await
        }
    };
    drop(worktree);
    results.thresholds = thresholds::evaluate(&results, &plan.thresholds, plan.compare.latency);
    results.save(out)?;
    if let Some(e) = save_error {
        print_labelled("warning", &format!("{e:#}"));
    }
    eprintln!("results written to {}", out.display());
    Ok(results)
}

/// What more looks at a run of `plan` should measure, judged as `compare` will judge the
/// finished file: for an A/B, what its undecided metrics need; for one side, what its own
/// spread says a later comparison needs (`repetitions: auto` only); with a fixed
/// `workload.repetitions` and `compare.extend`, another fixed batch while undecided.
fn planner(plan: &Plan) -> impl FnMut(&Results) -> Vec<Option<u32>> + use<> {
    let policy = policy_of(&plan.compare, Some(&plan.workload));
    let names: Vec<String> = plan.workload.scenarios.iter().map(|s| s.name.clone()).collect();
    let fixed = match plan.workload.repetitions {
        crate::config::Repetitions::Fixed(n) => Some((n, plan.compare.extend.repetitions_after(n))),
        crate::config::Repetitions::Auto => None,
    };
    let mut target = fixed.map_or(0, |(n, _)| n);
    move |r: &Results| {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let wanted = match r.base_run.as_deref() {
            Some(base) => stats::wanted_repetitions(&stats::compare(base, r, &policy), &names),
            None if fixed.is_none() => stats::planned_repetitions(r, &policy),
            None => vec![None; names.len()],
        };
        match fixed {
            Some((_, step)) => {
                target += step;
                wanted.iter().map(|w| w.map(|_| target)).collect()
            }
            None => wanted,
        }
    }
}

/// The looks after the first that a run of `plan` may take, if any: with `repetitions: auto`,
/// up to [`crate::config::AUTO_LOOKS`] within `compare.budget`; with a fixed count, those
/// `compare.extend` allows an A/B.
fn extension<'a>(
    plan: &Plan,
    ab: bool,
    planner: &'a mut dyn FnMut(&Results) -> Vec<Option<u32>>,
) -> Option<load::Extension<'a>> {
    let e = plan.compare.extend;
    let max_looks = e.looks(plan.workload.repetitions);
    match plan.workload.repetitions {
        crate::config::Repetitions::Auto => Some(load::Extension {
            max_looks,
            max_repetitions: load::MostRepetitions::WithinBudget { ceiling: stats::MAX_REPETITIONS },
            budget: load::Budget::Total(plan.compare.budget.0),
            plan: planner,
        }),
        crate::config::Repetitions::Fixed(n) => (ab && max_looks > 1).then(|| load::Extension {
            max_looks,
            max_repetitions: load::MostRepetitions::Exactly(n + e.repetitions_after(n) * (max_looks - 1)),
            budget: load::Budget::AfterFirstLook(e.budget.0),
            plan: planner,
        }),
    }
}

/// The reference server's runtime, when it has upstreams to call: from `--runtime-config`, or
/// the embedded config pointed at `--upstream`, or either moved by `MCP_RUNTIME_*_URL`.
fn serve_runtime(
    upstream: Option<&str>,
    config: Option<&std::path::Path>,
) -> anyhow::Result<Option<std::sync::Arc<crate::runtime::Runtime>>> {
    let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("MCP_RUNTIME_")).collect();
    let has_env_upstream = env.iter().any(|(k, _)| k.starts_with("MCP_RUNTIME_UPSTREAM_"));
    if upstream.is_none() && config.is_none() && !has_env_upstream {
        return Ok(None);
    }
    let config = config.map(crate::runtime::RuntimeConfig::from_file).transpose()?;
    let runtime = server::upstreams::build_runtime(config, upstream, env)?;
    Ok(Some(std::sync::Arc::new(runtime)))
}

/// Registers for Ctrl-C (SIGINT) and SIGTERM now, so that a signal arriving before the wait
/// begins is not lost (it would end the process unhandled), and returns the wait for either.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let interrupt = signal(SignalKind::interrupt()).ok();
    async fn received(signal: Option<Signal>) {
        match signal {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    async move {
        tokio::select! {
            _ = received(term) => {}
            _ = received(interrupt) => {}
        }
    }
}

/// Ctrl-C or SIGTERM cancels the run; the engine then ends the server and returns what it has.
async fn cancel_on_signal(cancel: CancellationToken) {
    stop_signal().await;
    eprintln!("interrupted: stopping the server and writing the results measured so far");
    cancel.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configs_defaults_are_the_statistics_defaults() {
        let c = crate::config::CompareConfig::default();
        assert_eq!(min_effects(&c.min_effect), Policy::DEFAULT.min_effect);
        assert_eq!(c.alpha, Policy::DEFAULT.alpha);
    }
}
