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
fn every_field_has_a_description_and_an_example_for_editors_to_show() {
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
    let mut without_examples = Vec::new();
    shown_by_example(&schema, &schema, "", &mut without_examples);
    assert!(without_examples.is_empty(), "fields an editor cannot show an example of: {without_examples:?}");
    // Units carry examples, which every duration, percentage and rate field refers to.
    for unit in ["Duration", "Percent", "Rate", "Latency", "Repetitions"] {
        assert!(schema["$defs"][unit]["examples"].as_array().is_some_and(|e| !e.is_empty()), "{unit}");
    }
    assert_eq!(schema["$id"].as_str().map(Path::new).and_then(Path::file_name).unwrap(), "perf.schema.json");
}

/// Collects the properties under `node` that an editor has no value to show for: no
/// `examples`, no `enum` or `const`, no default other than null or empty, and no reference to a
/// definition that has one (booleans need none).
fn shown_by_example(root: &serde_json::Value, node: &serde_json::Value, at: &str, missing: &mut Vec<String>) {
    fn shown(root: &serde_json::Value, node: &serde_json::Value, depth: usize) -> bool {
        let Some(map) = node.as_object() else { return false };
        if depth > 8 {
            return false;
        }
        if ["examples", "enum", "const"].iter().any(|k| map.contains_key(*k)) {
            return true;
        }
        if map
            .get("default")
            .is_some_and(|d| !(d.is_null() || d == &serde_json::json!([]) || d == &serde_json::json!({})))
        {
            return true;
        }
        if map.get("type").is_some_and(|t| t == "boolean" || t == &serde_json::json!(["boolean"])) {
            return true;
        }
        if let Some(reference) = map.get("$ref").and_then(|r| r.as_str()) {
            let name = reference.rsplit('/').next().unwrap();
            return shown(root, &root["$defs"][name], depth + 1);
        }
        ["anyOf", "oneOf"].iter().any(|k| {
            map.get(*k).and_then(|v| v.as_array()).is_some_and(|alternatives| {
                alternatives.iter().all(|a| a.get("type").is_some_and(|t| t == "null") || shown(root, a, depth + 1))
            })
        })
    }
    match node {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                for (name, property) in properties {
                    if !shown(root, property, 0) {
                        missing.push(format!("{at}.{name}"));
                    }
                }
            }
            for (key, value) in map {
                shown_by_example(root, value, &format!("{at}/{key}"), missing);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| shown_by_example(root, i, at, missing)),
        _ => {}
    }
}
