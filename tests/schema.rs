//! The config's JSON Schema: `mcp-perfcheck schema` is what is committed, every config in the
//! repository validates against it under an independent validator, and it explains every field.

use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::common::{SCHEMA as COMMITTED, bin, root, validate_configs as validate};

fn generated() -> String {
    let out = bin().arg("schema").assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

/// Every config the repository ships: fixtures, benches, the embedded default.
fn shipped_configs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["fixtures/configs", "benches"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root().join(dir)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.push(root().join("src/config/default.yaml"));
    files.sort();
    files
}

#[test]
fn the_committed_schema_is_what_the_config_types_generate() {
    let committed = std::fs::read_to_string(root().join(COMMITTED)).unwrap();
    assert!(
        committed == generated(),
        "{COMMITTED} is stale: regenerate it with `cargo run -- schema > {COMMITTED}` and commit it"
    );
}

#[test]
fn every_shipped_config_validates_under_an_independent_validator() {
    let files = shipped_configs();
    assert!(files.len() >= 10, "{files:?}");
    let (code, out) = validate(&files);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("ok ")).count(), files.len(), "{out}");
}

#[test]
fn the_validator_refuses_what_mcp_perfcheck_refuses() {
    // The same mistakes the loader names: an unknown field, a duration without its unit, an
    // unknown executor. Both must refuse them, or the schema tells editors a different story.
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("typo.yaml", "duraton: 1s", "'duraton' was unexpected"),
        ("unitless.yaml", "duration: 5", "5 is not valid"),
        ("executor.yaml", "executor: constant-vu", "'constant-vu' is not valid"),
    ];
    for (name, line, expected) in cases {
        let path = dir.path().join(name);
        let yaml = format!("server:\n  command: [x]\nworkload:\n  scenarios:\n    - name: a\n      {line}\n");
        std::fs::write(&path, yaml).unwrap();
        let (code, out) = validate(std::slice::from_ref(&path));
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.contains(expected), "{name}: {out}");
        bin().args(["run", "--config"]).arg(&path).assert().code(2).stderr(predicate::str::contains(name));
    }
}

#[test]
fn every_field_has_a_description_for_editors_to_show() {
    let schema: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    fn walk(node: &serde_json::Value, at: &str, missing: &mut Vec<String>) {
        match node {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                    for (name, property) in properties {
                        if property.get("description").and_then(|d| d.as_str()).is_none_or(str::is_empty) {
                            missing.push(format!("{at}.{name}"));
                        }
                    }
                }
                for (key, value) in map {
                    walk(value, &format!("{at}/{key}"), missing);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, at, missing)),
            _ => {}
        }
    }
    let mut missing = Vec::new();
    walk(&schema, "", &mut missing);
    assert!(missing.is_empty(), "fields without a description: {missing:?}");
    // Units carry examples, which every duration, percentage and rate field refers to.
    for unit in ["Duration", "Percent", "Rate", "Latency", "Repetitions"] {
        assert!(schema["$defs"][unit]["examples"].as_array().is_some_and(|e| !e.is_empty()), "{unit}");
    }
    assert_eq!(schema["$id"].as_str().map(Path::new).and_then(Path::file_name).unwrap(), "perf.schema.json");
}
