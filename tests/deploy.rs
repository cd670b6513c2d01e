//! `deploy/` checked where it can be without a cluster or Docker: the Kubernetes manifests
//! against the Kubernetes 1.37 API's schemas (kubernetes-validate, strict: unknown fields are
//! errors), the Compose file against the Compose specification's schema (check-jsonschema),
//! HAProxy's config by HAProxy itself, and the capacity config by ours. The Dockerfile is not
//! built (no Docker here).

use crate::common::{require_peer, root};

fn passes(program: std::path::PathBuf, args: &[&str]) -> String {
    let out = std::process::Command::new(&program).args(args).current_dir(root()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} {args:?}:\n{text}", program.display());
    text
}

#[test]
fn the_kubernetes_manifests_use_only_fields_the_api_has() {
    let validate = require_peer(".peers/lint/bin/kubernetes-validate");
    let files = ["deploy/k8s/mcp-server.yaml", "deploy/k8s/redis.yaml", "deploy/k8s/prometheus-adapter-rules.yaml"];
    let mut args = vec!["--strict"];
    args.extend(files);
    let out = passes(validate, &args);
    for kind in
        ["deployment/mcp-server", "service/mcp-server", "horizontalpodautoscaler/mcp-server", "deployment/redis"]
    {
        assert!(out.contains(&format!("passed for resource {kind}")), "{kind} checked:\n{out}");
    }
    // The probes are on our endpoints, and the drain is there.
    let server = std::fs::read_to_string(root().join(files[0])).unwrap();
    for needed in ["path: /readyz", "path: /healthz", "preStop:", "--drain-delay", "MCP_SERVE_SESSION_STORE"] {
        assert!(server.contains(needed), "{needed}");
    }
}

#[test]
fn the_sharded_load_job_uses_only_fields_the_api_has_and_a_config_we_read() {
    let validate = require_peer(".peers/lint/bin/kubernetes-validate");
    let file = "deploy/k8s/loadgen-job.yaml";
    let out = passes(validate.clone(), &["--strict", file]);
    for kind in ["configmap/mcp-perfcheck-loadgen", "job/mcp-perfcheck-loadgen", "cronjob/mcp-perfcheck-merge"] {
        assert!(out.contains(&format!("passed for resource {kind}")), "{kind} checked:\n{out}");
    }
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let docs: Vec<serde_yaml::Value> =
        serde_yaml::Deserializer::from_str(&text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    let job = docs.iter().find(|d| d["kind"] == "Job").unwrap();
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let shards = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(job["spec"]["parallelism"].as_u64(), Some(shards), "every shard at once");
    let args: Vec<&str> = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = args.iter().position(|a| *a == "--shards").unwrap();
    assert_eq!(args[at + 1], shards.to_string(), "--shards is the Job's completions");
    // The config every shard runs is one this version reads.
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap()["data"]["perf.yaml"].as_str().unwrap();
    let config = mcp_perfcheck::config::Config::from_yaml(config, "loadgen-job.yaml perf.yaml").unwrap();
    assert!(config.server.url.is_some() && config.server.command.is_empty(), "shards measure the Service");
    // A misspelt field is caught, so the pass above means something.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, text.replace("completionMode:", "completionModes:")).unwrap();
    let out = std::process::Command::new(validate).args(["--strict"]).arg(&broken).output().unwrap();
    assert!(!out.status.success(), "a misspelt field passed");
}

#[test]
fn the_compose_file_and_its_balancer_config_are_valid() {
    let check = require_peer(".peers/lint/bin/check-jsonschema");
    passes(check, &["--builtin-schema", "vendor.compose-spec", "deploy/compose.yaml"]);
    let haproxy = require_peer("/usr/sbin/haproxy");
    let out = passes(haproxy, &["-c", "-f", "deploy/haproxy.cfg"]);
    assert!(out.contains("Configuration file is valid"), "{out}");
}

#[test]
fn the_capacity_config_is_a_valid_config() {
    let text = std::fs::read_to_string(root().join("deploy/capacity.yaml")).unwrap();
    let config = mcp_perfcheck::config::Config::from_yaml(&text, "deploy/capacity.yaml").unwrap();
    let yaml = serde_yaml::to_string(&config.workload).unwrap();
    assert!(yaml.contains("breakpoint"), "{yaml}");
}
