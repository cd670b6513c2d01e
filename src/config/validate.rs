//! Checks of a parsed config that serde cannot express (cross-field rules), and the
//! argument files it names, read at load time.

use std::collections::HashSet;
use std::path::Path;

use super::*;

impl Config {
    /// Reads every `arguments_file`: one JSON object per non-empty line.
    pub(super) fn read_argument_files(&mut self, dir: &Path) -> Result<(), String> {
        for (i, scenario) in self.workload.scenarios.iter_mut().enumerate() {
            for (j, entry) in scenario.mix.iter_mut().enumerate() {
                let Some(file) = &entry.arguments_file else { continue };
                let at = format!("field `workload.scenarios[{i}].mix[{j}].arguments_file`");
                let path = dir.join(file);
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("{at}: cannot read {}: {e}", path.display()))?;
                for (k, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let args = serde_json::from_str(line)
                        .map_err(|e| format!("{at}: {} line {}: not a JSON object: {e}", path.display(), k + 1))?;
                    entry.argument_lines.push(args);
                }
                if entry.argument_lines.is_empty() {
                    return Err(format!("{at}: {} has no lines", path.display()));
                }
            }
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        let field = |path: &str, problem: &str| Err(format!("field `{path}`: {problem}"));
        let launches = !self.server.command.is_empty();
        if launches && self.server.command[0].trim().is_empty() {
            return field("server.command", "must name a program, e.g. [\"./target/release/my-server\"]");
        }
        match (self.server.transport, &self.server.url) {
            (Transport::Stdio, _) if !launches => {
                return field("server.command", "must name a program, e.g. [\"./target/release/my-server\"]");
            }
            (Transport::Stdio, Some(_)) => return field("server.url", "is only used with `transport: http`"),
            (Transport::Http, None) => {
                return field("server.url", "is required with `transport: http`, e.g. http://127.0.0.1:3000/mcp");
            }
            (Transport::Http, Some(url)) => {
                let parsed = url.parse::<http::Uri>();
                let scheme = url.starts_with("http://") || url.starts_with("https://");
                if !scheme || parsed.as_ref().map_or(true, |u| u.host().is_none()) {
                    return field(
                        "server.url",
                        "must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:3000/mcp",
                    );
                }
            }
            _ => {}
        }
        if self.server.transport == Transport::Stdio {
            if !self.server.headers.is_empty() {
                return field("server.headers", "are sent over `transport: http` only");
            }
            if self.server.ca_file.is_some() {
                return field("server.ca_file", "is for `transport: http` with an https:// URL");
            }
        }
        for name in self.server.headers.keys() {
            let path = format!("server.headers.{name}");
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return field(&path, "is not a valid header name");
            }
            if super::server::RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return field(&path, "is set by mcp-perfcheck itself and cannot be configured");
            }
            if let mcp_runtime::http::HeaderSource::Value(v) = &self.server.headers[name].0
                && http::HeaderValue::from_str(v).is_err()
            {
                return field(&path, "is not a valid header value");
            }
        }
        if let Some(h) = &self.history
            && !matches!(h, super::BaselineConfig::GitBranch { .. } | super::BaselineConfig::Artifact { .. })
        {
            return field("history.store", "keeps past runs: `git-branch` or `artifact`");
        }
        if self.server.era == super::Era::Handshake && self.server.transport == Transport::Stdio {
            return field(
                "server.era",
                "`handshake` is for `transport: http` (over stdio the server's answer settles it)",
            );
        }
        if let Some(url) = &self.server.metrics_url
            && !url.starts_with("http://")
        {
            return field("server.metrics_url", "must be an http:// URL, e.g. http://127.0.0.1:9464/metrics");
        }
        if self.server.startup_timeout.0.is_zero() {
            return field("server.startup_timeout", "must be greater than zero");
        }
        for (name, sim) in &self.server.upstreams {
            if !(0.0..=1.0).contains(&sim.error_rate) {
                return field(&format!("server.upstreams.{name}.error_rate"), "must be in [0, 1]");
            }
        }
        let mentioned = |text: &str| {
            text.match_indices(UPSTREAM_PLACEHOLDER)
                .map(|(i, _)| {
                    let rest = &text[i + UPSTREAM_PLACEHOLDER.len()..];
                    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .collect::<Vec<_>>()
        };
        let texts = self.server.command.iter().chain(self.server.env.values()).chain(self.server.url.iter());
        for name in texts.flat_map(|t| mentioned(t)) {
            if !self.server.upstreams.contains_key(&name) {
                return field(
                    "server.upstreams",
                    &format!("`{UPSTREAM_PLACEHOLDER}{name}` is used but no upstream `{name}` is defined"),
                );
            }
        }
        let w = &self.workload;
        if w.repetitions == Repetitions::Fixed(0) {
            return field("workload.repetitions", "must be at least 1");
        }
        if w.request_timeout.0.is_zero() {
            return field("workload.request_timeout", "must be greater than zero");
        }
        if w.scenarios.is_empty() {
            return field("workload.scenarios", "must list at least one scenario");
        }
        let mut names = HashSet::new();
        for (i, s) in w.scenarios.iter().enumerate() {
            let at = format!("workload.scenarios[{i}]");
            if s.name.trim().is_empty() {
                return field(&format!("{at}.name"), "must not be empty");
            }
            for (j, f) in s.faults.iter().enumerate() {
                let at = format!("{at}.faults[{j}]");
                if !self.server.upstreams.contains_key(&f.upstream) {
                    let known: Vec<_> = self.server.upstreams.keys().map(String::as_str).collect();
                    let problem =
                        format!("no upstream `{}` in server.upstreams (defined: {})", f.upstream, known.join(", "));
                    return field(&format!("{at}.upstream"), &problem);
                }
                if f.duration.0.is_zero() {
                    return field(&format!("{at}.duration"), "must be greater than zero");
                }
                if let Err(problem) = f.fault() {
                    return field(&at, &problem);
                }
            }
            if !names.insert(s.name.as_str()) {
                return field(&format!("{at}.name"), &format!("duplicate scenario name `{}`", s.name));
            }
            s.validate_executor(&at)?;
            for (j, m) in s.mix.iter().enumerate() {
                m.validate(&format!("{at}.mix[{j}]"))?;
            }
            if !s.mix.is_empty() && s.mix.iter().all(|m| m.weight == 0) {
                return field(&format!("{at}.mix"), "at least one weight must be greater than zero");
            }
        }
        threshold::parse_all(&self.thresholds)?;
        let c = &self.compare;
        if !(c.alpha > 0.0 && c.alpha < 1.0) {
            return field("compare.alpha", "must be between 0 and 1 (exclusive), e.g. 0.05");
        }
        for (kind, p) in c.min_effect.entries() {
            if p.fraction() >= 1.0 {
                return field(&format!("compare.min_effect.{kind}"), "must be below 100%");
            }
        }
        if !(c.min_effect.error_ratio >= 1.0 && c.min_effect.error_ratio.is_finite()) {
            return field("compare.min_effect.error_ratio", "must be a number of at least 1, e.g. 1.5");
        }
        if c.gate.is_empty() {
            return field(
                "compare.gate",
                "name at least one metric (p50, p95, p99, throughput, error_rate, rss_peak, cpu_per_call)",
            );
        }
        if self.workload.scenarios.iter().all(|s| s.gate.as_ref().is_some_and(Vec::is_empty)) {
            return field(
                "workload.scenarios[].gate",
                "every scenario's gate is empty, so nothing would decide: name a metric in one of them",
            );
        }
        if c.extend.max_looks == Some(0) {
            return field("compare.extend.max_looks", "must be at least 1 (1: no extra looks)");
        }
        if c.extend.repetitions == Some(0) {
            return field("compare.extend.repetitions", "must be at least 1");
        }
        Ok(())
    }
}
