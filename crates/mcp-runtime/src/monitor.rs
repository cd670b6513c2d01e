//! The runtime's statistics in Prometheus text format, under stable names (listed in the
//! README). Pulled from the components when scraped rather than pushed through a global
//! recorder (the `metrics` facade): several runtimes in one process (tests, two instances
//! side by side) stay apart, and a scrape costs nothing between scrapes.

use std::fmt::Write;

use super::histogram::HistogramSnapshot;
use super::stack::RuntimeStats;

/// Renders every metric family of `stats`.
pub fn render(stats: &RuntimeStats) -> String {
    let mut out = Exposition::default();
    let ups = &stats.upstreams;

    out.family(
        "mcp_breaker_state",
        "gauge",
        "Breaker state: 0 closed, 1 open, 2 half-open, 3 disabled, 4 forced open, 5 metrics only.",
    );
    for u in ups {
        out.sample("mcp_breaker_state", &[("upstream", &u.name)], f64::from(u.breaker.state_gauge));
    }
    out.family("mcp_breaker_transitions_total", "counter", "Breaker state transitions.");
    for u in ups {
        for t in &u.breaker.transitions {
            out.sample(
                "mcp_breaker_transitions_total",
                &[("upstream", &u.name), ("from", t.from), ("to", t.to)],
                t.count as f64,
            );
        }
    }
    out.family("mcp_breaker_calls_total", "counter", "Calls seen by the breaker, by outcome.");
    for u in ups {
        let b = &u.breaker;
        for (outcome, n) in [
            ("success", b.successes),
            ("failure", b.failures),
            ("slow", b.slow),
            ("rejected", b.rejected),
            ("ignored", b.ignored),
        ] {
            out.sample("mcp_breaker_calls_total", &[("upstream", &u.name), ("outcome", outcome)], n as f64);
        }
    }

    out.family(
        "mcp_cache_requests_total",
        "counter",
        "Cache lookups by result (l2_* are second-layer lookups after a first-layer miss).",
    );
    for u in ups {
        let c = &u.cache;
        let results = [
            ("hit", c.hits),
            ("miss", c.misses),
            ("stale", c.stale),
            ("negative", c.negative),
            ("l2_hit", c.l2_hits),
            ("l2_miss", c.l2_misses),
            ("l2_error", c.l2_errors),
        ];
        for (result, n) in results {
            out.sample("mcp_cache_requests_total", &[("cache", &u.name), ("result", result)], n as f64);
        }
    }
    out.family("mcp_cache_entries", "gauge", "Entries in the first cache layer.");
    for u in ups {
        out.sample("mcp_cache_entries", &[("cache", &u.name)], u.cache.entries as f64);
    }
    out.family(
        "mcp_cache_weight",
        "gauge",
        "The first cache layer's total weight: bytes with max_bytes, else entries.",
    );
    for u in ups {
        out.sample("mcp_cache_weight", &[("cache", &u.name)], u.cache.weight as f64);
    }

    out.family("mcp_pool_connections", "gauge", "Upstream connections by state.");
    for u in ups {
        out.sample("mcp_pool_connections", &[("upstream", &u.name), ("state", "in_use")], u.pool.in_use as f64);
        out.sample("mcp_pool_connections", &[("upstream", &u.name), ("state", "idle")], u.pool.idle as f64);
    }
    out.family("mcp_pool_connections_opened_total", "counter", "Upstream connections opened.");
    for u in ups {
        out.sample("mcp_pool_connections_opened_total", &[("upstream", &u.name)], u.pool.opened as f64);
    }
    out.family("mcp_pool_waiters", "gauge", "Calls waiting for an upstream connection.");
    for u in ups {
        out.sample("mcp_pool_waiters", &[("upstream", &u.name)], u.pool.waiters as f64);
    }
    out.family("mcp_pool_wait_seconds", "histogram", "Time calls waited for an upstream connection.");
    for u in ups {
        out.histogram("mcp_pool_wait_seconds", &[("upstream", &u.name)], &u.pool.wait_seconds);
    }

    out.family("mcp_limiter_rejected_total", "counter", "Calls shed by a throttle, by limiter and reason.");
    for u in ups {
        for r in &u.rejected {
            let limiter = format!("{}.{}", u.name, r.limiter);
            out.sample("mcp_limiter_rejected_total", &[("limiter", &limiter), ("reason", r.reason)], r.count as f64);
        }
    }
    out.sample(
        "mcp_limiter_rejected_total",
        &[("limiter", "tenants"), ("reason", "rate")],
        stats.tenants_rejected as f64,
    );
    out.family("mcp_limiter_adaptive_limit", "gauge", "The adaptive concurrency limit now.");
    for u in ups {
        if let Some(limit) = u.adaptive_limit {
            out.sample("mcp_limiter_adaptive_limit", &[("upstream", &u.name)], f64::from(limit));
        }
    }

    out.family("mcp_retries_total", "counter", "Retry decisions, by outcome.");
    for u in ups {
        let r = &u.retries;
        let outcomes = [
            ("retried", r.retried),
            ("succeeded_after_retry", r.succeeded_after_retry),
            ("exhausted", r.exhausted),
            ("budget_rejected", r.budget_rejected),
        ];
        for (outcome, n) in outcomes {
            out.sample("mcp_retries_total", &[("upstream", &u.name), ("outcome", outcome)], n as f64);
        }
    }

    out.family("mcp_fallback_total", "counter", "Calls by the fallback level that served them.");
    for level in ["fresh", "stale", "static_default", "error"] {
        let n: u64 = ups.iter().map(|u| u.fallback.get(level).copied().unwrap_or(0)).sum();
        out.sample("mcp_fallback_total", &[("level", level)], n as f64);
    }

    out.family("mcp_batch_size", "histogram", "Distinct items per upstream batch call.");
    for u in ups {
        if let Some(b) = &u.batch {
            out.histogram("mcp_batch_size", &[("upstream", &u.name)], &b.sizes);
        }
    }

    if let Some(p) = &stats.process {
        out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        out.sample("process_resident_memory_bytes", &[], p.resident_memory_bytes as f64);
        out.family("process_cpu_seconds_total", "counter", "User and system CPU time in seconds.");
        out.sample("process_cpu_seconds_total", &[], p.cpu_seconds);
        out.family("process_open_fds", "gauge", "Open file descriptors.");
        out.sample("process_open_fds", &[], p.open_fds as f64);
        out.family("process_threads", "gauge", "OS threads.");
        out.sample("process_threads", &[], p.threads as f64);
    }
    if let Some(t) = &stats.tokio {
        out.family("tokio_workers", "gauge", "tokio worker threads.");
        out.sample("tokio_workers", &[], t.workers as f64);
        out.family("tokio_alive_tasks", "gauge", "tokio tasks alive.");
        out.sample("tokio_alive_tasks", &[], t.alive_tasks as f64);
        out.family("tokio_global_queue_depth", "gauge", "Tasks waiting in tokio's global queue.");
        out.sample("tokio_global_queue_depth", &[], t.global_queue_depth as f64);
    }
    out.text
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (bound, count) in &h.buckets {
            let le = bound.to_string();
            let with_le: Vec<_> = labels.iter().copied().chain([("le", le.as_str())]).collect();
            self.sample(&bucket, &with_le, *count as f64);
        }
        let with_inf: Vec<_> = labels.iter().copied().chain([("le", "+Inf")]).collect();
        self.sample(&bucket, &with_inf, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
