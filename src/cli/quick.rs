//! Quick mode: `run -- CMD ARGS…` or `run --url URL`, no config file. The flags stand for a
//! one-scenario config, written out as YAML and read back through the config loader, so a quick
//! run is validated like any other and `--print-config` shows exactly what ran.

use anyhow::Context;
use mcp_runtime::http::HeaderSource;
use serde_yaml::{Mapping, Value};

use crate::config::{Config, HumanDuration, Rate};

/// Where a quick run's config comes from, in reports and error messages.
pub const SOURCE: &str = "<command line>";

/// The flags of quick mode. Their defaults measure for about 30 s: five fresh servers, each
/// warmed up for 1 s and measured for 4 s, which is enough repetitions for `compare` to decide.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Quick mode (no config file)")]
#[command(group = clap::ArgGroup::new("target").args(["command", "url"]).multiple(true))]
pub struct QuickArgs {
    /// The stdio server to launch (after `--`), e.g. `-- npx -y @modelcontextprotocol/server-everything`.
    /// With --url: the command that starts the HTTP server, waited for until the URL accepts
    /// connections.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// A Streamable HTTP endpoint, e.g. `http://127.0.0.1:3000/mcp`: already running, or started
    /// by the command after `--`.
    #[arg(long, conflicts_with = "config")]
    pub url: Option<String>,
    /// The measured window of each repetition.
    #[arg(long, default_value = "4s", value_parser = HumanDuration::parse, requires = "target")]
    pub duration: HumanDuration,
    /// Load before each measured window, not counted.
    #[arg(long, default_value = "1s", value_parser = HumanDuration::parse, requires = "target")]
    pub warmup: HumanDuration,
    /// Calls kept in flight (closed model); with --rate, the most outstanding at once.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), requires = "target")]
    pub concurrency: Option<u32>,
    /// Send at this rate whatever the server's pace (open model), e.g. `200/s`.
    #[arg(long, value_parser = Rate::parse, requires = "target")]
    pub rate: Option<Rate>,
    /// Fresh server processes, each measured once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..), requires = "target")]
    pub repetitions: u32,
    /// A tool to call, repeatable: `NAME` (no arguments) or `NAME={"json":"arguments"}`.
    /// Default: every tool the server lists, with arguments made from its input schema.
    #[arg(long = "tool", value_name = "NAME[=JSON]", value_parser = parse_tool, requires = "target")]
    pub tools: Vec<ToolCall>,
    #[command(flatten)]
    pub access: HttpAccess,
    /// A call unanswered for this long counts as a timeout.
    #[arg(long, default_value = "10s", value_parser = HumanDuration::parse, requires = "target")]
    pub timeout: HumanDuration,
    /// How long the server may take to start and answer `initialize` (npx may download first).
    #[arg(long, default_value = "60s", value_parser = HumanDuration::parse, requires = "target")]
    pub startup_timeout: HumanDuration,
    /// End with the config this run used, as YAML to keep (`> perf.yaml`).
    #[arg(long, requires = "target")]
    pub print_config: bool,
}

/// How to reach a Streamable HTTP server that wants more than its URL: headers (a token, a
/// tenant) and a private certificate authority. Shared by quick mode and `init`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HttpAccess {
    /// With --url: a header sent with every request, repeatable, as curl writes it:
    /// `'X-Tenant: load-test'`. A config printed or written holds its value: keep secrets in
    /// --header-env.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header, requires = "url")]
    pub headers: Vec<(String, String)>,
    /// With --url: a header whose value is read from an environment variable when the run
    /// connects, e.g. `authorization=MCP_TOKEN` (hold `Bearer …` in MCP_TOKEN); the value is
    /// never printed.
    #[arg(long = "header-env", value_name = "NAME=VAR", value_parser = parse_header_env, requires = "url")]
    pub header_envs: Vec<(String, String)>,
    /// With an `https://` --url: root certificates (PEM) to trust besides the system's, for a
    /// server behind a private certificate authority.
    #[arg(long, value_name = "PEM", requires = "url")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl HttpAccess {
    /// Every header: the values given and the variables named. A name given twice (header
    /// names ignore case) is an error, not a silent choice of one.
    pub fn header_sources(&self) -> anyhow::Result<Vec<(String, HeaderSource)>> {
        let given = self.headers.iter().map(|(name, value)| (name.clone(), HeaderSource::Value(value.clone())));
        let named = self.header_envs.iter().map(|(name, var)| (name.clone(), HeaderSource::Env { env: var.clone() }));
        let all: Vec<(String, HeaderSource)> = given.chain(named).collect();
        for (i, (name, _)) in all.iter().enumerate() {
            anyhow::ensure!(
                !all[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)),
                "--header/--header-env: the header `{name}` is given twice"
            );
        }
        Ok(all)
    }

    /// The `server.headers` and `server.ca_file` entries these flags stand for.
    pub fn insert_into(&self, server: &mut Mapping) -> anyhow::Result<()> {
        let mut headers = Mapping::new();
        for (name, source) in self.header_sources()? {
            let value = match source {
                HeaderSource::Value(v) => v.into(),
                HeaderSource::Env { env } => Value::Mapping(Mapping::from_iter([("env".into(), env.into())])),
            };
            headers.insert(name.into(), value);
        }
        if !headers.is_empty() {
            server.insert("headers".into(), Value::Mapping(headers));
        }
        if let Some(ca) = &self.ca_file {
            let ca = ca.to_str().context("--ca-file: the path is not UTF-8")?;
            server.insert("ca_file".into(), ca.into());
        }
        Ok(())
    }
}

/// One `--tool`: a name and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: serde_json::Map<String, serde_json::Value>,
}

fn parse_tool(text: &str) -> Result<ToolCall, String> {
    let (name, arguments) = match text.split_once('=') {
        Some((name, json)) => {
            let value: serde_json::Value =
                serde_json::from_str(json).map_err(|e| format!("the arguments of `{name}` are not JSON: {e}"))?;
            let serde_json::Value::Object(map) = value else {
                return Err(format!("the arguments of `{name}` must be a JSON object, e.g. {name}={{\"x\":1}}"));
            };
            (name, map)
        }
        None => (text, serde_json::Map::new()),
    };
    if name.trim().is_empty() {
        return Err("give the tool's name, e.g. --tool echo or --tool 'echo={\"message\":\"hi\"}'".into());
    }
    Ok(ToolCall { name: name.to_string(), arguments })
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.trim().to_string())),
        _ => Err("write a header as curl does, `NAME: VALUE`, e.g. --header 'X-Tenant: load-test'".into()),
    }
}

fn parse_header_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, var)) if !name.trim().is_empty() && !var.trim().is_empty() => {
            Ok((name.trim().to_string(), var.trim().to_string()))
        }
        _ => Err("write NAME=VAR, the header and the environment variable holding its value, e.g. --header-env authorization=MCP_TOKEN".into()),
    }
}

impl QuickArgs {
    /// Whether quick mode was asked for (a command or a URL).
    pub fn is_given(&self) -> bool {
        !self.command.is_empty() || self.url.is_some()
    }

    /// The config these flags stand for, as commented YAML.
    pub fn config_yaml(&self) -> anyhow::Result<String> {
        let mut server = Mapping::new();
        if !self.command.is_empty() {
            server.insert("command".into(), Value::Sequence(self.command.iter().map(|a| a.as_str().into()).collect()));
        }
        match &self.url {
            Some(url) => {
                server.insert("transport".into(), "http".into());
                server.insert("url".into(), url.as_str().into());
            }
            None => {
                server.insert("transport".into(), "stdio".into());
            }
        }
        self.access.insert_into(&mut server)?;
        server.insert("startup_timeout".into(), self.startup_timeout.to_string().into());

        let mut scenario = Mapping::new();
        scenario.insert("name".into(), "quick".into());
        match self.rate {
            Some(rate) => {
                scenario.insert("executor".into(), "constant-arrival-rate".into());
                scenario.insert("rate".into(), rate.to_string().into());
                if let Some(c) = self.concurrency {
                    scenario.insert("max_in_flight".into(), c.into());
                }
            }
            None => {
                scenario.insert("concurrency".into(), self.concurrency.unwrap_or(1).into());
            }
        }
        scenario.insert("warmup".into(), self.warmup.to_string().into());
        scenario.insert("duration".into(), self.duration.to_string().into());
        if !self.tools.is_empty() {
            let mix = self.tools.iter().map(tool_entry).collect::<anyhow::Result<Vec<_>>>()?;
            scenario.insert("mix".into(), Value::Sequence(mix));
        }

        let mut workload = Mapping::new();
        workload.insert("repetitions".into(), self.repetitions.into());
        workload.insert("request_timeout".into(), self.timeout.to_string().into());
        workload.insert("scenarios".into(), Value::Sequence(vec![Value::Mapping(scenario)]));

        let mut config = Mapping::new();
        config.insert("server".into(), Value::Mapping(server));
        config.insert("workload".into(), Value::Mapping(workload));
        let body = serde_yaml::to_string(&config).context("writing the quick-mode config")?;
        let mix_note = if self.tools.is_empty() {
            "# No `mix`: every tool the server lists, with arguments made from its input schema.\n"
        } else {
            ""
        };
        Ok(format!(
            "# yaml-language-server: $schema={}\n# The config of a quick run (`mcp-perfcheck run --print-config …`): keep it as perf.yaml\n# and run it with `mcp-perfcheck run --config perf.yaml`.\n{mix_note}{body}",
            crate::config::SCHEMA_URL
        ))
    }

    /// The config these flags stand for, loaded and validated like a file.
    pub fn config(&self) -> anyhow::Result<(Config, String)> {
        let yaml = self.config_yaml()?;
        let config = Config::from_yaml(&yaml, SOURCE)?;
        Ok((config, yaml))
    }
}

fn tool_entry(tool: &ToolCall) -> anyhow::Result<Value> {
    let mut entry = Mapping::new();
    entry.insert("tool".into(), tool.name.as_str().into());
    if !tool.arguments.is_empty() {
        let arguments = serde_yaml::to_value(&tool.arguments).context("the --tool arguments")?;
        entry.insert("arguments".into(), arguments);
    }
    Ok(Value::Mapping(entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        #[command(flatten)]
        quick: QuickArgs,
    }

    fn quick(args: &[&str]) -> QuickArgs {
        Probe::try_parse_from(std::iter::once("probe").chain(args.iter().copied())).expect("parses").quick
    }

    #[test]
    fn a_bare_command_is_a_closed_stdio_scenario_over_every_listed_tool() {
        let (config, yaml) = quick(&["--", "node", "server.js", "stdio"]).config().expect("valid");
        assert_eq!(config.server.command, ["node", "server.js", "stdio"]);
        assert_eq!(config.workload.repetitions, crate::config::Repetitions::Fixed(5));
        let s = &config.workload.scenarios[0];
        assert_eq!((s.concurrency, s.mix.len()), (Some(1), 0));
        assert_eq!(s.duration.map(|d| d.0.as_secs()), Some(4));
        assert!(yaml.starts_with("# yaml-language-server: $schema="), "{yaml}");
        assert!(yaml.contains("every tool the server lists"), "{yaml}");
    }

    #[test]
    fn rate_tools_and_url_make_an_open_http_scenario_with_a_mix() {
        let args = quick(&[
            "--url",
            "http://127.0.0.1:9/mcp",
            "--rate",
            "50/s",
            "--concurrency",
            "8",
            "--tool",
            r#"echo={"message":"hi"}"#,
            "--tool",
            "ping_tool",
        ]);
        let (config, _) = args.config().expect("valid");
        assert_eq!(config.server.transport, crate::config::Transport::Http);
        assert!(config.server.command.is_empty());
        let s = &config.workload.scenarios[0];
        assert_eq!(s.rate.map(|r| r.per_second()), Some(50.0));
        assert_eq!(s.max_in_flight, Some(8));
        assert_eq!(s.mix.len(), 2);
        assert_eq!(s.mix[0].arguments["message"], "hi");
        assert!(s.mix[1].arguments.is_empty());
    }

    #[test]
    fn headers_are_written_as_curl_does_or_read_from_the_environment() {
        let url = ["--url", "http://127.0.0.1:9/mcp"];
        let args =
            quick(&[&url[..], &["-H", "X-Tenant: load-test", "--header-env", "authorization=MCP_TOKEN"]].concat());
        let (config, yaml) = args.config().expect("valid");
        let headers = &config.server.headers;
        assert_eq!(headers["X-Tenant"].0, HeaderSource::Value("load-test".into()));
        assert_eq!(headers["authorization"].0, HeaderSource::Env { env: "MCP_TOKEN".into() });
        assert!(yaml.contains("env: MCP_TOKEN"), "{yaml}");

        let refused = |args: &[&str]| {
            Probe::try_parse_from(std::iter::once("probe").chain(args.iter().copied()))
                .err()
                .expect("refused")
                .to_string()
        };
        assert!(refused(&[&url[..], &["-H", "no colon"]].concat()).contains("`NAME: VALUE`"));
        assert!(refused(&[&url[..], &["--header-env", "authorization"]].concat()).contains("NAME=VAR"));
        let twice = quick(&[&url[..], &["-H", "Authorization: x", "--header-env", "authorization=T"]].concat());
        assert!(format!("{:#}", twice.config().unwrap_err()).contains("`authorization` is given twice"));
        // A stdio server has no request to put a header on.
        assert!(refused(&["-H", "a: b", "--", "server"]).contains("--url"));
        // The config's own checks still apply: the client sets the session's header itself.
        let reserved = quick(&[&url[..], &["-H", "Mcp-Session-Id: x"]].concat()).config().unwrap_err();
        assert!(format!("{reserved:#}").contains("`server.headers.Mcp-Session-Id`"), "{reserved:#}");
    }

    #[test]
    fn bad_flags_are_refused_by_name() {
        let err = |args: &[&str]| {
            Probe::try_parse_from(std::iter::once("probe").chain(args.iter().copied()))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(&["--tool", "echo=[1]", "--", "x"]).contains("must be a JSON object"));
        assert!(err(&["--tool", "echo={", "--", "x"]).contains("not JSON"));
        assert!(err(&["--duration", "5", "--", "x"]).contains("a number and a unit"));
        // Quick flags without a server to point them at.
        assert!(err(&["--duration", "5s"]).contains("--url"), "{}", err(&["--duration", "5s"]));
        assert!(err(&["--config", "perf.yaml", "--url", "http://x"]).contains("cannot be used with"));
    }
}
