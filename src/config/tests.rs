use std::time::Duration;

use super::*;

const MINIMAL: &str = "
server:
  command: [./srv]
workload:
  scenarios:
    - name: s
      duration: 1s
      mix: [{tool: echo}]
";

fn err(yaml: &str) -> String {
    Config::from_yaml(yaml, "perf.yaml").unwrap_err().to_string()
}

#[test]
fn upstream_simulators_and_faults_are_checked_against_each_other() {
    let with = |server_extra: &str, fault: &str| {
        format!(
            "server:\n  command: [./srv, --upstream, \"@upstream:catalog\"]\n{server_extra}workload:\n  scenarios:\n    - name: s\n      duration: 3s\n      mix: [{{tool: lookup}}]\n      faults: [{fault}]\n"
        )
    };
    let sims = "  upstreams:\n    catalog: {latency: \"lognormal:2ms,0.5\"}\n";
    let ok =
        Config::from_yaml(&with(sims, "{at: 1s, upstream: catalog, kind: outage, duration: 1s}"), "perf.yaml").unwrap();
    assert_eq!(ok.workload.scenarios[0].faults[0].kind_name(), "outage");
    assert!(err(&with("", "")).contains("`@upstream:catalog` is used but no upstream `catalog` is defined"));
    let e = err(&with(sims, "{at: 1s, upstream: pricing, kind: outage, duration: 1s}"));
    assert!(
        e.contains(
            "workload.scenarios[0].faults[0].upstream`: no upstream `pricing` in server.upstreams (defined: catalog)"
        ),
        "{e}"
    );
    let e = err(&with(sims, "{at: 1s, upstream: catalog, kind: slowdown, duration: 1s}"));
    assert!(e.contains("`latency` is required for a slowdown"), "{e}");
    let e = err(&with(sims, "{at: 1s, upstream: catalog, kind: meteor, duration: 1s}"));
    assert!(e.contains("unknown variant `meteor`"), "{e}");
    let e = err(&with(
        "  upstreams:\n    catalog: {latency: \"gamma:1ms\"}\n",
        "{at: 1s, upstream: catalog, kind: outage, duration: 1s}",
    ));
    assert!(e.contains("unknown distribution `gamma`"), "{e}");
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = Config::from_yaml(MINIMAL, "perf.yaml").unwrap();
    assert_eq!(c.workload.repetitions, Repetitions::Auto);
    assert_eq!(c.compare.budget.0, Duration::from_secs(180));
    assert_eq!(c.compare.gate, crate::stats::Gate::DEFAULT.metrics());
    assert_eq!(c.workload.scenarios[0].gate, None, "the scenario follows compare.gate");
    let own = Config::from_yaml(
        &MINIMAL.replace("      duration: 1s\n", "      duration: 1s\n      gate: [error_rate]\n"),
        "perf.yaml",
    );
    assert_eq!(own.unwrap().workload.scenarios[0].gate, Some(vec![crate::stats::Metric::ErrorRate]));
    let e = err(&MINIMAL.replace("      duration: 1s\n", "      duration: 1s\n      gate: []\n"));
    assert!(e.contains("workload.scenarios[].gate") && e.contains("nothing would decide"), "{e}");
    let fixed = Config::from_yaml(&MINIMAL.replace("workload:\n", "workload:\n  repetitions: 7\n"), "perf.yaml");
    assert_eq!(fixed.unwrap().workload.repetitions, Repetitions::Fixed(7));
    let word = Config::from_yaml(&MINIMAL.replace("workload:\n", "workload:\n  repetitions: many\n"), "perf.yaml");
    let e = format!("{:#}", word.unwrap_err());
    assert!(e.contains("workload") && e.contains("a number of repetitions or `auto`"), "{e}");
    assert_eq!(
        c.workload.scenarios[0].model(),
        LoadModel::Closed { vus: Profile::constant(1.0, Duration::from_secs(1)), warmup: Duration::ZERO }
    );
    assert_eq!(c.workload.scenarios[0].mix[0].weight, 1);
    assert_eq!(c.compare.alpha, 0.05);
    assert_eq!(c.compare.min_effect.latency.fraction(), 0.05);
    assert_eq!(c.compare.min_effect.memory.fraction(), 0.10);
    let per_kind = format!("{MINIMAL}compare: {{min_effect: {{memory: 20%, error_rate: 0.5%}}}}\n");
    let m = Config::from_yaml(&per_kind, "perf.yaml").unwrap().compare.min_effect;
    assert_eq!((m.memory.fraction(), m.error_rate.fraction(), m.latency.fraction()), (0.20, 0.005, 0.05));
    let one = Config::from_yaml(&format!("{MINIMAL}compare: {{min_effect: 3%}}\n"), "perf.yaml").unwrap();
    let m = one.compare.min_effect;
    assert_eq!((m.latency.fraction(), m.throughput.fraction(), m.memory.fraction()), (0.03, 0.03, 0.10));
    assert_eq!(c.server.startup_timeout.0, Duration::from_secs(20));
    assert_eq!(c.compare.extend.looks(Repetitions::Fixed(10)), 1, "extra looks at a fixed count are opt-in");
    assert_eq!(c.compare.extend.looks(Repetitions::Auto), AUTO_LOOKS);
    let extend = format!("{MINIMAL}compare: {{extend: {{max_looks: 3, budget: 5m}}}}\n");
    let e = Config::from_yaml(&extend, "perf.yaml").unwrap().compare.extend;
    assert_eq!((e.looks(Repetitions::Auto), e.repetitions_after(10), e.budget.0), (3, 5, Duration::from_secs(300)));
    assert_eq!(e.repetitions_after(3), 2);
}

#[test]
fn the_issue_example_config_parses() {
    let yaml = r#"
server:
  build: "cargo build --release"
  command: ["./target/release/my-server", "--stdio"]
  transport: stdio
  env: {RUST_LOG: "warn"}
  startup_timeout: 20s
workload:
  repetitions: 5
  scenarios:
    - name: steady
      concurrency: 8
      warmup: 2s
      duration: 10s
      mix:
        - tool: echo
          arguments: {message: "hi"}
          weight: 3
        - tool: compute
          arguments: {iterations: 1000}
          weight: 1
compare:
  alpha: 0.05
  min_effect: 5%
"#;
    let c = Config::from_yaml(yaml, "perf.yaml").unwrap();
    assert_eq!(c.workload.scenarios[0].warmup.unwrap().0, Duration::from_secs(2));
    assert_eq!(c.workload.scenarios[0].mix[1].arguments["iterations"], 1000);
    assert_eq!(c.server.env["RUST_LOG"], "warn");
}

#[test]
fn unknown_field_names_file_field_and_line() {
    let e = err("server:\n  command: [x]\n  comand: [y]\nworkload: {scenarios: []}\n");
    assert!(e.starts_with("perf.yaml: line 3 column 3:"), "{e}");
    assert!(e.contains("unknown field `comand`"), "{e}");
    assert!(e.contains("server"), "{e}");
}

#[test]
fn nested_unknown_field_names_its_path() {
    let e = err(&MINIMAL.replace("duration: 1s", "duration: 1s\n      durration: 2s"));
    assert!(e.contains("workload.scenarios[0]"), "{e}");
    assert!(e.contains("unknown field `durration`"), "{e}");
    assert!(e.contains("line 8"), "{e}");
}

#[test]
fn bad_duration_names_the_field_and_value() {
    let e = err(&MINIMAL.replace("duration: 1s", "duration: 10 parsecs"));
    assert!(e.contains("workload.scenarios[0].duration"), "{e}");
    assert!(e.contains("invalid duration `10 parsecs`"), "{e}");
    assert!(e.contains("line 7"), "{e}");
}

#[test]
fn validation_errors_name_the_field() {
    let no_mix = Config::from_yaml(&MINIMAL.replace("mix: [{tool: echo}]", "mix: []"), "p.yaml").unwrap();
    assert!(no_mix.workload.scenarios[0].mix.is_empty(), "an empty mix means the tools the server lists");
    let zero = MINIMAL.replace("mix: [{tool: echo}]", "mix: [{tool: echo, weight: 0}]");
    assert!(err(&zero).contains("`workload.scenarios[0].mix`: at least one weight"));
    let e = err(&MINIMAL.replace("command: [./srv]", "command: []"));
    assert!(e.contains("`server.command`"), "{e}");
    let e = err(&format!("{MINIMAL}compare: {{alpha: 2}}\n"));
    assert!(e.contains("`compare.alpha`"), "{e}");
    let e = err(&format!("{MINIMAL}compare: {{min_effect: {{memory: 120%}}}}\n"));
    assert!(e.contains("`compare.min_effect.memory`: must be below 100%"), "{e}");
    let e = err(&format!("{MINIMAL}compare: {{min_effect: {{latncy: 5%}}}}\n"));
    assert!(e.contains("compare.min_effect") && e.contains("unknown field `latncy`"), "{e}");
    let e = err(&format!("{MINIMAL}compare: {{extend: {{max_looks: 0}}}}\n"));
    assert!(e.contains("`compare.extend.max_looks`: must be at least 1"), "{e}");
    let e = err(&format!("{MINIMAL}compare: {{extend: {{max_looks: 3, repetitions: 0}}}}\n"));
    assert!(e.contains("`compare.extend.repetitions`: must be at least 1"), "{e}");
    let e = err(&format!("{MINIMAL}compare: {{extend: {{looks: 3}}}}\n"));
    assert!(e.contains("compare.extend") && e.contains("unknown field `looks`"), "{e}");
    let e = err(&format!("{MINIMAL}baseline: {{store: s3}}\n"));
    assert!(e.contains("baseline") && e.contains("unknown variant `s3`"), "{e}");
    let e = err(&format!("{MINIMAL}baseline: {{store: file, pth: x}}\n"));
    assert!(e.contains("baseline") && e.contains("unknown field `pth`"), "{e}");
    let e = err(&format!("{MINIMAL}baseline: {{store: ab}}\n"));
    assert!(e.contains("`baseline.ref` is required by store `ab`"), "{e}");
    let e = err(&format!("{MINIMAL}baseline: {{store: file, retention: 3}}\n"));
    assert!(e.contains("`baseline.retention` does not apply to store `file`"), "{e}");
    let e = err(&format!("{MINIMAL}compare: {{min_effect: 5}}\n"));
    assert!(e.contains("write it with a % sign"), "{e}");
    let e = err(&MINIMAL.replace("name: s", "name: s\n      concurrency: 0"));
    assert!(e.contains("`workload.scenarios[0].concurrency`"), "{e}");
}

#[test]
fn executors_take_their_own_fields() {
    let open =
        MINIMAL.replace("duration: 1s", "executor: constant-arrival-rate\n      rate: 200/s\n      duration: 1s");
    let c = Config::from_yaml(&open, "perf.yaml").unwrap();
    assert_eq!(
        c.workload.scenarios[0].model(),
        LoadModel::Open {
            rate: Profile::constant(200.0, Duration::from_secs(1)),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            warmup: Duration::ZERO,
        }
    );
    let e = err(&MINIMAL.replace("duration: 1s", "executor: constant-arrival-rate\n      duration: 1s"));
    assert!(e.contains("field `workload.scenarios[0].rate`: required by executor constant-arrival-rate"), "{e}");
    let e = err(&open.replace("rate: 200/s", "rate: 200/s\n      concurrency: 3"));
    assert!(e.contains("`workload.scenarios[0].concurrency`: does not apply to executor constant-arrival-rate"), "{e}");
    let iters = MINIMAL.replace("duration: 1s", "executor: iterations\n      iterations: 50\n      concurrency: 2");
    let c = Config::from_yaml(&iters, "perf.yaml").unwrap();
    assert_eq!(c.workload.scenarios[0].model(), LoadModel::Iterations { concurrency: 2, iterations: 50 });
    let e = err(&iters.replace("iterations: 50", "iterations: 50\n      duration: 1s"));
    assert!(e.contains("`workload.scenarios[0].duration`: does not apply to executor iterations"), "{e}");
    let e = err(&MINIMAL.replace("duration: 1s", "executor: constant-vus"));
    assert!(e.contains("`workload.scenarios[0].duration`: required by executor constant-vus"), "{e}");
    let e = err(&MINIMAL.replace("executor", "x").replace("duration: 1s", "executor: open-loop\n      duration: 1s"));
    assert!(e.contains("unknown variant `open-loop`"), "{e}");
}

#[test]
fn thresholds_are_parsed_with_the_config_and_errors_name_them() {
    let yaml = format!(
        "{MINIMAL}thresholds:\n  \"tools/call{{tool:echo}}\": [\"p(95)<50ms\", {{threshold: \"error_rate<1%\", abort_on_fail: true, delay: 2s}}]\n"
    );
    let (c, _) = (Config::from_yaml(&yaml, "perf.yaml").unwrap(), ());
    let plan = c.into_plan("perf.yaml".into(), Path::new("/x"), Path::new("."));
    assert_eq!(plan.thresholds.len(), 2);
    assert!(plan.thresholds[1].abort_on_fail);
    assert_eq!(plan.thresholds[1].delay, Duration::from_secs(2));
    let e = err(&format!("{MINIMAL}thresholds:\n  server: [\"rss_peak<lots\"]\n"));
    assert!(e.contains("thresholds.\"server\"[0]"), "{e}");
    let e = err(&format!("{MINIMAL}thresholds:\n  server: [{{threshold: \"rss_peak<1MB\", abort: true}}]\n"));
    assert!(e.contains("thresholds"), "{e}");
}

#[test]
fn mix_entries_take_the_fields_of_their_method() {
    let with = |entry: &str| MINIMAL.replace("mix: [{tool: echo}]", &format!("mix: [{entry}]"));
    let c = Config::from_yaml(&with("{method: ping}, {method: tools/list}, {method: resources/read, uri: \"file:///a\"}, {method: prompts/get, prompt: greet, arguments: {who: x}}"), "p.yaml").unwrap();
    let ops: Vec<String> = c.workload.scenarios[0].mix.iter().map(MixEntry::operation).collect();
    assert_eq!(ops, ["ping", "tools/list", "resources/read", "prompts/get:greet"]);
    assert!(
        err(&with("{method: resources/read}"))
            .contains("`workload.scenarios[0].mix[0].uri`: required for resources/read")
    );
    assert!(err(&with("{method: ping, tool: echo}")).contains("mix[0].tool`: does not apply to ping"));
    assert!(err(&with("{}")).contains("mix[0].tool`: required for tools/call"));
    assert!(err(&with("{method: tools/list, arguments: {a: 1}}")).contains("arguments`: does not apply to tools/list"));
    assert!(err(&with("{method: subscribe}")).contains("unknown variant `subscribe`"));
}

#[test]
fn argument_templates_are_checked() {
    let with =
        |args: &str| MINIMAL.replace("mix: [{tool: echo}]", &format!("mix: [{{tool: echo, arguments: {args}}}]"));
    Config::from_yaml(
        &with("{id: {$random: [1, 2]}, n: {$sequence: {start: 10, step: 2}}, m: {$sequence: 5}}"),
        "p.yaml",
    )
    .unwrap();
    assert!(err(&with("{id: {$random: []}}")).contains("arguments.id`: $random takes a non-empty list"));
    assert!(err(&with("{id: {$sequence: {from: 1}}}")).contains("$sequence takes"));
    assert!(err(&with("{id: {$randon: [1]}}")).contains("use one of $random or $sequence"));
}

#[test]
fn ramping_executors_take_stages_of_their_kind() {
    let ramp = MINIMAL.replace(
            "duration: 1s",
            "executor: ramping-arrival-rate\n      start_rate: 10/s\n      stages: [{duration: 2s, target: 100/s}, {duration: 1s, target: 0/s}]",
        );
    let c = Config::from_yaml(&ramp, "p.yaml").unwrap();
    let LoadModel::Open { rate, .. } = c.workload.scenarios[0].model() else { panic!("open model") };
    assert_eq!(rate.start, 10.0);
    assert_eq!(rate.stages, vec![(Duration::from_secs(2), 100.0), (Duration::from_secs(1), 0.0)]);
    let e = err(&ramp.replace("target: 100/s", "target: 100"));
    assert!(e.contains("`workload.scenarios[0].stages[0].target`: a rate is needed, e.g. 100/s"), "{e}");
    let vus = MINIMAL.replace("duration: 1s", "executor: ramping-vus\n      stages: [{duration: 2s, target: 8}]");
    let c = Config::from_yaml(&vus, "p.yaml").unwrap();
    let LoadModel::Closed { vus: profile, .. } = c.workload.scenarios[0].model() else { panic!("closed") };
    assert_eq!((profile.start, profile.max()), (1.0, 8.0));
    let e = err(&vus.replace("target: 8", "target: 8/s"));
    assert!(e.contains("stages[0].target`: a number of VUs is needed"), "{e}");
    let e = err(&vus.replace("executor: ramping-vus", "executor: ramping-vus\n      duration: 3s"));
    assert!(e.contains("`workload.scenarios[0].duration`: does not apply to executor ramping-vus"), "{e}");
    let e = err(&MINIMAL.replace("duration: 1s", "executor: ramping-vus\n      stages: []"));
    assert!(e.contains("stages`: list at least one stage"), "{e}");
    let e =
        err(&MINIMAL
            .replace("duration: 1s", "executor: ramping-arrival-rate\n      stages: [{duration: 1s, target: 0/s}]"));
    assert!(e.contains("stages`: must be greater than zero"), "{e}");
}

#[test]
fn argument_files_are_read_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ids.jsonl"), "{\"id\": 1}\n\n{\"id\": 2}\n").unwrap();
    let yaml = MINIMAL.replace("mix: [{tool: echo}]", "mix: [{tool: lookup, arguments_file: ids.jsonl}]");
    let path = dir.path().join("perf.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let (c, _) = Config::from_path(&path).unwrap();
    assert_eq!(c.workload.scenarios[0].mix[0].argument_lines.len(), 2);
    std::fs::write(dir.path().join("ids.jsonl"), "{\"id\": 1}\n[1, 2]\n").unwrap();
    let e = Config::from_path(&path).unwrap_err().to_string();
    assert!(e.contains("mix[0].arguments_file`") && e.contains("ids.jsonl line 2: not a JSON object"), "{e}");
    std::fs::remove_file(dir.path().join("ids.jsonl")).unwrap();
    let e = Config::from_path(&path).unwrap_err().to_string();
    assert!(e.contains("cannot read") && e.contains("ids.jsonl"), "{e}");
    let both = MINIMAL.replace("mix: [{tool: echo}]", "mix: [{tool: x, arguments: {a: 1}, arguments_file: f.jsonl}]");
    assert!(err(&both).contains("either arguments or arguments_file"));
}

#[test]
fn the_handshake_era_is_for_http() {
    let yaml = MINIMAL.replace("command: [./srv]", "command: [./srv]\n  era: handshake");
    assert!(err(&yaml).contains("`server.era`: `handshake` is for `transport: http`"), "{}", err(&yaml));
    let bad = MINIMAL.replace("command: [./srv]", "command: [./srv]\n  era: 2025");
    assert!(err(&bad).contains("era"), "{}", err(&bad));
}

#[test]
fn metrics_url_must_be_http() {
    let yaml = MINIMAL.replace("command: [./srv]", "command: [./srv]\n  metrics_url: https://x/metrics");
    assert!(err(&yaml).contains("`server.metrics_url`: must be an http:// URL"));
    let ok = MINIMAL.replace("command: [./srv]", "command: [./srv]\n  metrics_url: http://127.0.0.1:9464/metrics");
    assert!(Config::from_yaml(&ok, "p.yaml").unwrap().server.metrics_url.is_some());
}

#[test]
fn spike_breakpoint_and_soak_fit_their_executors() {
    let open = |extra: &str| {
        MINIMAL.replace(
            "mix: [{tool: echo}]",
            &format!("executor: constant-arrival-rate\n      rate: 10/s\n      {extra}\n      mix: [{{tool: echo}}]"),
        )
    };
    let ok = Config::from_yaml(&open("spike: {at: 200ms, factor: 4, hold: 300ms}"), "p.yaml").unwrap();
    let model = ok.workload.scenarios[0].model();
    let LoadModel::Open { rate, .. } = model else { panic!() };
    assert_eq!(rate.at(Duration::from_millis(350)), 40.0);
    assert!(err(&open("spike: {at: 200ms, factor: 1, hold: 300ms}")).contains("`workload.scenarios[0].spike.factor`"));
    assert!(err(&open("spike: {at: 800ms, factor: 2, hold: 300ms}")).contains("at + hold must end before"));
    assert!(err(&open("breakpoint: {p99: 50ms}")).contains("`workload.scenarios[0].breakpoint`: does not apply"));
    let ramp = MINIMAL.replace(
            "duration: 1s\n      mix: [{tool: echo}]",
            "executor: ramping-arrival-rate\n      stages: [{duration: 1s, target: 10/s}]\n      breakpoint: {}\n      mix: [{tool: echo}]",
        );
    assert!(err(&ramp).contains("give p99, error_rate or both"), "{}", err(&ramp));
    assert!(Config::from_yaml(&open("soak: true"), "p.yaml").unwrap().workload.scenarios[0].soak);
}

#[test]
fn http_needs_a_url_and_may_skip_the_command() {
    let http = |server: &str| {
        format!("server: {server}\nworkload: {{scenarios: [{{name: s, duration: 1s, mix: [{{tool: echo}}]}}]}}\n")
    };
    assert!(err(&http("{transport: http}")).contains("`server.url`: is required with `transport: http`"));
    assert!(err(&http("{transport: http, url: \"ftp://x/mcp\"}")).contains("must be an http:// or https:// URL"));
    let https = "{transport: http, url: \"https://x/mcp\", ca_file: ca.pem, headers: {authorization: {env: T}}}";
    let plan =
        Config::from_yaml(&http(https), "p.yaml").unwrap().into_plan("p".into(), Path::new("x"), Path::new("/c"));
    assert_eq!(plan.server.ca_file.as_deref(), Some(Path::new("/c/ca.pem")), "relative to the config");
    assert!(
        err(&http("{command: [x], headers: {a: b}}"))
            .contains("`server.headers`: are sent over `transport: http` only")
    );
    let reserved = "{transport: http, url: \"http://h/mcp\", headers: {Mcp-Session-Id: x}}";
    assert!(err(&http(reserved)).contains("`server.headers.Mcp-Session-Id`: is set by mcp-perfcheck itself"));
    let bad = "{transport: http, url: \"http://h/mcp\", headers: {\"a b\": x}}";
    assert!(err(&http(bad)).contains("is not a valid header name"));
    assert!(err(&http("{command: [x], url: \"http://h/mcp\"}")).contains("`server.url`: is only used with"));
    assert!(err(&http("{}")).contains("`server.command`: must name a program"));
    let c = Config::from_yaml(&http("{transport: http, url: \"http://127.0.0.1:3000/mcp\"}"), "p.yaml").unwrap();
    let plan = c.into_plan("p.yaml".into(), Path::new("/bin/x"), Path::new("."));
    assert!(plan.server.command.is_empty());
    assert_eq!(plan.server.to_string(), "http://127.0.0.1:3000/mcp");
}

#[test]
fn missing_file_is_named() {
    let e = Config::from_path(Path::new("/nonexistent/perf.yaml")).unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/perf.yaml: cannot read config file"), "{e}");
}

#[test]
fn embedded_default_resolves_self_to_this_executable() {
    let plan = Plan::embedded_default(Path::new("/usr/bin/mcp-perfcheck"));
    assert_eq!(plan.server.command, ["/usr/bin/mcp-perfcheck", "serve"]);
    assert!(plan.workload.scenarios[0].mix.iter().any(|m| m.operation() == "tools/call:compute"));
    use crate::stats::Metric;
    assert_eq!(plan.workload.scenarios[0].gate, None);
    assert_eq!(plan.workload.scenarios[1].gate, Some(vec![Metric::ErrorRate, Metric::RssPeak]));
}
