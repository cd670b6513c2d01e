//! `run` against the reference server: the table, the results file, and `report` of it.

use predicates::prelude::*;

use crate::common::{bin, load_lock, read_json, run_cmd, run_ok, write_config};

const QUICK: &str = r#"
server:
  command: ["@self", "serve"]
workload:
  repetitions: 2
  scenarios:
    - name: steady
      concurrency: 4
      warmup: 200ms
      duration: 700ms
      mix:
        - {tool: echo, arguments: {message: "hi"}, weight: 3}
        - {tool: compute, arguments: {iterations: 1000}, weight: 1}
"#;

#[test]
fn run_measures_the_reference_server_and_writes_v1_results() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), QUICK);
    let out = dir.path().join("results.json");
    run_cmd(&cfg, &out)
        .assert()
        .success()
        .stdout(predicate::str::contains("mcp-perfcheck-reference"))
        .stdout(predicate::str::is_match(r"operation\s+calls/s\s+p50\s+p95\s+p99\s+errors").unwrap())
        .stdout(predicate::str::is_match(r"steady\s+tools/call:echo\s+[\d,]+\s+\S+").unwrap())
        .stdout(predicate::str::contains("tools/call:compute"))
        .stdout(predicate::str::is_match(r"steady: server peak RSS [\d.]+ MiB, \S+ CPU per call").unwrap())
        .stderr(predicate::str::contains("[steady] repetition 2/2"));

    let r = read_json(&out);
    assert_eq!(r["schema"], "mcp-perfcheck/results/v1");
    assert_eq!(r["server"]["name"], "mcp-perfcheck-reference");
    // The reference server lists 2026-07-28 in `server/discover`: spoken to statelessly.
    assert_eq!(r["server"]["protocol_version"], "2026-07-28");
    assert!(r["environment"]["cores"].as_u64().unwrap() >= 1);
    assert!(r["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(r["failure"].is_null());
    let reps = r["scenarios"][0]["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 2);
    for rep in reps {
        let ops = rep["operations"].as_array().unwrap();
        let echo = ops.iter().find(|o| o["name"] == "tools/call:echo").expect("echo measured");
        let compute = ops.iter().find(|o| o["name"] == "tools/call:compute").expect("compute measured");
        // The 3:1 mix shows in the counts.
        let (e, c) = (echo["count"].as_f64().unwrap(), compute["count"].as_f64().unwrap());
        assert!(e > 2.0 * c && e < 4.0 * c, "echo {e} vs compute {c}");
        assert!(echo["throughput_per_s"].as_f64().unwrap() > 0.0);
        let l = &echo["latency_us"];
        for k in ["p50", "p90", "p95", "p99", "p999", "max"] {
            assert!(l[k].as_u64().unwrap() > 0, "{k}");
        }
        assert!(l["p50"].as_u64() <= l["p99"].as_u64() && l["p99"].as_u64() <= l["max"].as_u64());
        assert_eq!(echo["errors"], serde_json::json!({}));
        assert!(!echo["histogram"].as_str().unwrap().is_empty());
        // The server's process, sampled over the window, and the generator's own cost.
        let res = &rep["server_resources"];
        assert!(res["samples"].as_u64().unwrap() >= 2, "{res}");
        assert!(res["rss_peak_bytes"].as_u64().unwrap() > 1_000_000, "{res}");
        assert!(res["cpu_us_per_call"].as_f64().unwrap() > 0.0, "{res}");
        assert!(res["threads_peak"].as_u64().unwrap() >= 1 && res["open_fds_peak"].as_u64().unwrap() >= 3);
        assert_eq!(res["processes_peak"], 1);
        let client = &rep["client"];
        assert!(client["cpu_us_per_call"].as_f64().unwrap() > 0.0, "{client}");
        assert!(client["bytes_sent"].as_u64().unwrap() > 100 * 40, "{client}");
        assert!(client["bytes_received"].as_u64().unwrap() > 100 * 40, "{client}");
    }
    // The library reads it back (histograms included) and writes the same bytes.
    let text = std::fs::read_to_string(&out).unwrap();
    let results = mcp_perfcheck::results::Results::from_json(&text).unwrap();
    assert_eq!(results.to_json(), text);

    bin()
        .args(["report", "--format", "markdown"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("| steady | tools/call:echo |"));
    bin()
        .args(["report", "--format", "json"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"schema\": \"mcp-perfcheck/results/v1\""));
}

#[test]
fn report_of_a_broken_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(&path, "{\"schema\": \"mcp-perfcheck/results/v1\", \"scen").unwrap();
    bin()
        .arg("report")
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("broken.json is not a usable results file"));
}

#[test]
fn help_documents_the_exit_codes() {
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("0  pass"))
        .stdout(predicate::str::contains("1  a significant regression"))
        .stdout(predicate::str::contains("2  error"));
}

#[test]
fn a_scenario_without_a_mix_calls_every_tool_the_server_lists() {
    let _turn = load_lock();
    let r = run_ok(
        r#"
server:
  command: ["@self", "serve", "--upstream", "@upstream:catalog"]
  upstreams:
    catalog: {}
workload:
  repetitions: 2
  scenarios:
    - name: listed
      concurrency: 2
      duration: 300ms
"#,
    );
    for rep in r["scenarios"][0]["repetitions"].as_array().unwrap() {
        let ops = rep["operations"].as_array().unwrap();
        let names: Vec<&str> = ops.iter().map(|o| o["name"].as_str().unwrap()).collect();
        // Every listed tool; `compute` gets its required `iterations` and `lookup` its `id` from
        // the schema.
        let listed = ["aggregate", "batch_lookup", "compute", "echo", "lookup", "runtime_stats"];
        assert_eq!(names, listed.map(|t| format!("tools/call:{t}")), "{rep}");
        for op in ops {
            assert_eq!(op["errors"], serde_json::json!({}), "arguments made from the schema are accepted: {op}");
            assert!(op["count"].as_u64().unwrap() > 10, "{op}");
        }
    }
}

#[test]
fn listed_tools_whose_probe_call_fails_are_left_out_and_named() {
    let _turn = load_lock();
    // No upstream: the reference server's upstream tools answer with a tool error.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    let config = write_config(
        dir.path(),
        "server:\n  command: [\"@self\", \"serve\"]\nworkload:\n  repetitions: 1\n  scenarios:\n    - name: listed\n      duration: 300ms\n",
    );
    run_cmd(&config, &out)
        .assert()
        .success()
        .stderr(predicate::str::contains("measuring the 2 tool(s) the server lists: `compute`, `echo`"))
        .stderr(predicate::str::contains(
            "left out `lookup`: its probe call, with arguments made from its schema, returned a tool error",
        ));
    let ops = read_json(&out)["scenarios"][0]["repetitions"][0]["operations"].clone();
    let names: Vec<&str> = ops.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["tools/call:compute", "tools/call:echo"]);
}
