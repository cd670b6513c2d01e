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
