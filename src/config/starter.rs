//! The starter config `mcp-perfcheck init` writes: commented YAML made from what a server
//! answered (its tools, arguments from their schemas) and what a short probe run measured
//! (thresholds). Everything the server named (tool names, argument keys and values) is its own,
//! so untrusted: it is written as escaped double-quoted YAML, never as plain text, and a name
//! that the threshold grammar cannot hold gets no per-tool threshold.

use std::fmt::Write as _;

use serde_json::Value;

use super::SCHEMA_URL;
use mcp_runtime::http::HeaderSource;

/// How the server is reached, as the config will say it.
#[derive(Debug, Clone)]
pub struct StarterServer {
    pub command: Vec<String>,
    pub url: Option<String>,
    /// `server.headers`: a value, or the environment variable holding it.
    pub headers: Vec<(String, HeaderSource)>,
    pub ca_file: Option<String>,
    pub startup_timeout: String,
}

/// A tool the server lists, and what the probe measured of it.
#[derive(Debug, Clone)]
pub struct StarterTool {
    pub name: String,
    pub arguments: serde_json::Map<String, Value>,
    /// Argument paths whose values were made up from their type alone.
    pub invented: Vec<String>,
    /// The probe's p99 (µs) and error rate, when the tool was measured.
    pub p99_us: Option<u64>,
    pub error_rate: Option<f64>,
}

/// Everything a starter config is made from.
#[derive(Debug, Clone)]
pub struct Starter {
    pub server: StarterServer,
    /// The tools the steady scenario calls.
    pub tools: Vec<StarterTool>,
    /// Listed tools left out, and why: written commented out.
    pub left_out: Vec<(StarterTool, String)>,
    /// The probe's length and its calls per second over every tool (one call in flight).
    pub probe: String,
    pub probe_calls_per_s: f64,
    /// `workload.repetitions` and the steady scenario's windows.
    pub repetitions: String,
    pub warmup: String,
    pub duration: String,
}

/// The config, as commented YAML.
pub fn render(s: &Starter) -> String {
    let mut y = String::new();
    let w = &mut y;
    line(w, &format!("# yaml-language-server: $schema={SCHEMA_URL}"));
    line(w, "# Written by `mcp-perfcheck init` from the server's tools/list and a probe run; every");
    line(w, "# field is explained in the README (\"Config\") and on hover in an editor that reads the line above.");
    line(w, "server:");
    if !s.server.command.is_empty() {
        let args: Vec<String> = s.server.command.iter().map(|a| quote(a)).collect();
        line(w, &format!("  command: [{}]", args.join(", ")));
    }
    match &s.server.url {
        Some(url) => {
            line(w, "  transport: http");
            line(w, &format!("  url: {}", quote(url)));
        }
        None => line(w, "  transport: stdio"),
    }
    if !s.server.headers.is_empty() {
        line(w, "  headers:");
        for (name, source) in &s.server.headers {
            let value = match source {
                HeaderSource::Value(v) => quote(v),
                HeaderSource::Env { env } => format!("{{env: {}}}", quote(env)),
            };
            line(w, &format!("    {}: {value}", quote(name)));
        }
    }
    if let Some(ca) = &s.server.ca_file {
        line(w, &format!("  ca_file: {}", quote(ca)));
    }
    line(w, &format!("  startup_timeout: {}", s.server.startup_timeout));
    line(w, "workload:");
    line(
        w,
        &format!(
            "  repetitions: {}  # fresh server processes per scenario; auto: as many as the noise asks, within compare.budget",
            s.repetitions
        ),
    );
    line(w, "  scenarios:");
    line(w, "    - name: steady   # one call in flight: latency measures the server, not the scheduler");
    line(w, "      concurrency: 1");
    line(w, &format!("      warmup: {}", s.warmup));
    line(w, &format!("      duration: {}", s.duration));
    line(w, "      mix:");
    for tool in &s.tools {
        mix_entry(w, tool, "");
    }
    for (tool, why) in &s.left_out {
        line(
            w,
            &format!(
                "        # left out: {} ({why}); to measure it, uncomment it with arguments that work:",
                quote(&tool.name)
            ),
        );
        mix_entry(w, tool, "# ");
    }
    phases(w, s);
    line(w, "compare:");
    line(w, "  alpha: 0.05       # significance, Holm-adjusted across metrics");
    line(w, "  min_effect: 5%    # smaller changes are never called regressions");
    line(w, "  gate: [p50, error_rate, rss_peak, cpu_per_call]   # the metrics that decide");
    thresholds(w, s);
    y
}

fn line(w: &mut String, text: &str) {
    w.push_str(text);
    w.push('\n');
}

/// One entry of the steady mix (`prefix` "# " comments it out).
fn mix_entry(w: &mut String, tool: &StarterTool, prefix: &str) {
    line(w, &format!("        {prefix}- tool: {}", quote(&tool.name)));
    if !tool.arguments.is_empty() {
        line(w, &format!("        {prefix}  arguments: {}", flow(&Value::Object(tool.arguments.clone()))));
    }
    if !tool.invented.is_empty() {
        let paths: Vec<String> = tool.invented.iter().map(|p| quote(p)).collect();
        line(w, &format!("        {prefix}  # made up from the schema's types alone: {}", paths.join(", ")));
    }
}

/// The spike and breakpoint scenarios, commented out, sized from the probe's rate.
fn phases(w: &mut String, s: &Starter) {
    let rate = s.probe_calls_per_s.max(1.0);
    let level = (rate / 2.0).round().max(1.0);
    let top = (rate * 4.0).round().max(2.0);
    let tools: Vec<String> = s.tools.iter().map(|t| format!("{{tool: {}}}", quote(&t.name))).collect();
    let mix = if tools.is_empty() { String::new() } else { format!("[{}]", tools.join(", ")) };
    let text = format!(
        "    # A spike: half the probe's rate ({rate:.0}/s with one call in flight), tripled for 2 s.
    # - name: spike
    #   executor: constant-arrival-rate
    #   rate: {level}/s
    #   warmup: 1s
    #   duration: 10s
    #   spike: {{at: 4s, factor: 3, hold: 2s}}
    #   mix: {mix}
    # A breakpoint run: the rate ramps to 4x the probe's until a second breaks a limit; the
    # report gives the capacity.
    # - name: breakpoint
    #   executor: ramping-arrival-rate
    #   stages: [{{duration: 30s, target: {top}/s}}]
    #   breakpoint: {{p99: 50ms, error_rate: 1%}}   # the limits of your SLO
    #   mix: {mix}
"
    );
    w.push_str(&text);
}

/// Suggested limits from the probe: each tool's p99 doubled, and its error rate.
fn thresholds(w: &mut String, s: &Starter) {
    line(
        w,
        &format!("# Suggested from a {} probe: each tool's p99 doubled, and no more errors than it showed", s.probe),
    );
    line(w, "# (at least 1%). A broken threshold fails `run` with exit 1.");
    line(w, "thresholds:");
    line(w, "  tools/call: [\"error_rate<1%\"]");
    for tool in &s.tools {
        let (Some(p99), Some(errors)) = (tool.p99_us, tool.error_rate) else { continue };
        if !selector_safe(&tool.name) {
            line(w, &format!("  # no threshold for {}: its name does not fit a selector", quote(&tool.name)));
            continue;
        }
        let latency = duration_text(round_up(p99.max(1) as f64 * 2.0));
        let rate = round_up((errors * 2.0 * 100.0).max(1.0)).min(100.0);
        line(w, &format!("  \"tools/call{{tool:{}}}\": [\"p(99)<{latency}\", \"error_rate<{rate}%\"]", tool.name));
    }
}

/// Whether `name` can stand in a `tools/call{tool:NAME}` selector, quoted in YAML as it is.
fn selector_safe(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
}

/// Up to two significant digits, rounded up (423 → 430, 5180 → 5200).
fn round_up(v: f64) -> f64 {
    if v <= 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(v.log10().floor() as i32 - 1);
    (v / scale).ceil() * scale
}

/// Microseconds as the threshold grammar writes them.
fn duration_text(us: f64) -> String {
    if us < 1000.0 { format!("{}us", us.round()) } else { format!("{}ms", (us / 100.0).round() / 10.0) }
}

/// A YAML double-quoted scalar: JSON's escapes, and every character YAML does not take as printable
/// (C0, DEL, C1, line and paragraph separators, the byte-order mark) as `\u` escapes of four hex digits.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value in YAML flow style, strings [`quote`]d.
fn flow(value: &Value) -> String {
    match value {
        Value::String(s) => quote(s),
        Value::Array(items) => format!("[{}]", items.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let fields: Vec<String> = map.iter().map(|(k, v)| format!("{}: {}", quote(k), flow(v))).collect();
            format!("{{{}}}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn tool(name: &str, arguments: Value, p99_us: Option<u64>) -> StarterTool {
        StarterTool {
            name: name.into(),
            arguments: arguments.as_object().cloned().unwrap_or_default(),
            invented: vec!["query".into()],
            p99_us,
            error_rate: p99_us.map(|_| 0.0),
        }
    }

    fn starter(tools: Vec<StarterTool>) -> Starter {
        Starter {
            server: StarterServer {
                command: vec!["node".into(), "dist/index.js".into()],
                url: None,
                headers: Vec::new(),
                ca_file: None,
                startup_timeout: "1m".into(),
            },
            tools,
            left_out: vec![(tool("slow", json!({}), None), "no answer within 2s in the probe call".into())],
            probe: "10s".into(),
            probe_calls_per_s: 1234.0,
            repetitions: "auto".into(),
            warmup: "1s".into(),
            duration: "4s".into(),
        }
    }

    #[test]
    fn the_starter_loads_as_a_config_with_thresholds_from_the_probe() {
        let text = render(&starter(vec![
            tool("echo", json!({"message": "a"}), Some(212)),
            tool("get-sum", json!({"a": 1, "b": 1}), Some(5180)),
        ]));
        let config = Config::from_yaml(&text, "starter").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let steady = &config.workload.scenarios[0];
        assert_eq!(steady.mix.len(), 2, "the left-out tool stays a comment:\n{text}");
        assert_eq!(steady.mix[0].arguments["message"], "a");
        assert_eq!(config.thresholds["tools/call{tool:echo}"].len(), 2);
        assert!(text.contains("\"tools/call{tool:echo}\": [\"p(99)<430us\", \"error_rate<1%\"]"), "{text}");
        assert!(text.contains("\"tools/call{tool:get-sum}\": [\"p(99)<11ms\""), "{text}");
        assert!(text.contains("# left out: \"slow\""), "{text}");
        assert!(text.contains("made up from the schema's types alone: \"query\""), "{text}");
        assert!(text.contains("# - name: breakpoint") && text.contains("target: 4936/s"), "{text}");
    }

    #[test]
    fn hostile_names_and_values_stay_data() {
        let corpus: Vec<String> =
            serde_json::from_str(include_str!("../../fixtures/hostile/strings.json")).expect("the corpus parses");
        let tools: Vec<StarterTool> = corpus
            .iter()
            .map(|s| StarterTool {
                name: s.clone(),
                arguments: json!({ s.as_str(): s }).as_object().cloned().unwrap(),
                invented: vec![s.clone()],
                p99_us: Some(100),
                error_rate: Some(0.0),
            })
            .collect();
        let mut s = starter(tools);
        s.server.command = corpus.clone();
        let text = render(&s);
        let config = Config::from_yaml(&text, "starter").unwrap_or_else(|e| panic!("{e}\n{text}"));
        // Every string came back exactly, nothing became a field or a threshold of its own.
        assert_eq!(config.server.command, corpus);
        let names: Vec<&str> = config.workload.scenarios[0].mix.iter().filter_map(|m| m.tool.as_deref()).collect();
        assert_eq!(names, corpus.iter().map(String::as_str).collect::<Vec<_>>());
        for (entry, s) in config.workload.scenarios[0].mix.iter().zip(&corpus) {
            assert_eq!(entry.arguments[s.as_str()], json!(s));
        }
        assert!(config.thresholds.keys().all(|k| k == "tools/call" || k.starts_with("tools/call{tool:")));
    }

    #[test]
    fn headers_and_the_ca_are_written_as_given_and_secrets_by_their_variable() {
        let mut s = starter(vec![tool("echo", json!({"message": "a"}), Some(212))]);
        s.server.command.clear();
        s.server.url = Some("https://mcp.example.com/mcp".into());
        s.server.headers = vec![
            ("x-tenant".into(), HeaderSource::Value("load \"test\"".into())),
            ("authorization".into(), HeaderSource::Env { env: "MCP_TOKEN".into() }),
        ];
        s.server.ca_file = Some("certs/ca.pem".into());
        let text = render(&s);
        let config = Config::from_yaml(&text, "starter").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(config.server.headers["x-tenant"].0, HeaderSource::Value("load \"test\"".into()));
        assert_eq!(config.server.headers["authorization"].0, HeaderSource::Env { env: "MCP_TOKEN".into() });
        assert_eq!(config.server.ca_file.as_deref(), Some(std::path::Path::new("certs/ca.pem")));
    }

    #[test]
    fn limits_round_up_to_two_significant_digits() {
        assert_eq!(round_up(423.0), 430.0);
        assert_eq!(round_up(5180.0), 5200.0);
        assert_eq!(round_up(99.0), 99.0);
        assert_eq!(duration_text(430.0), "430us");
        assert_eq!(duration_text(11000.0), "11ms");
        assert_eq!(duration_text(1500.0), "1.5ms");
    }
}
