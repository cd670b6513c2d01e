//! The GitHub Action (`action.yml`) and the workflows shipped with it: actionlint (with
//! shellcheck on every script) passes, the Action's scripts take inputs only through `env:`,
//! and every flag they pass exists on `mcp-perfcheck ci`.

use crate::common::{bin, require_peer, root};

#[test]
fn the_workflows_and_the_action_they_use_pass_actionlint() {
    let actionlint = require_peer(".peers/lint/bin/actionlint");
    let shellcheck = require_peer(".peers/lint/bin/shellcheck");
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for dir in [".github/workflows", "docs/workflows"] {
        let mut found: Vec<_> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml"))
            .collect();
        assert!(!found.is_empty(), "no workflows in {dir}");
        files.append(&mut found);
    }
    // `uses: ./` in this project's workflow makes actionlint check action.yml's inputs too.
    let out = std::process::Command::new(actionlint)
        .current_dir(root())
        .arg(format!("-shellcheck={}", shellcheck.display()))
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The script the Action's install step runs.
    let out = std::process::Command::new(shellcheck).arg(root().join("scripts/action-install.sh")).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_action_passes_inputs_to_its_scripts_only_through_env_and_only_flags_ci_has() {
    let action: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("action.yml")).unwrap()).unwrap();
    assert_eq!(action["runs"]["using"], "composite");
    let help = bin().args(["ci", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    let scripts: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(scripts.len() >= 2);
    for script in &scripts {
        assert!(!script.contains("${{"), "an expression inside a script is an injection: {script}");
    }
    let ci = scripts.iter().find(|s| s.contains("mcp-perfcheck \"${args[@]}\"")).expect("the step that runs ci");
    let flags: Vec<&str> = ci
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    assert!(flags.len() >= 8, "{flags:?}");
    for flag in flags {
        assert!(help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")), "`ci` has no {flag}");
    }
    for output in ["verdict", "report-path"] {
        assert!(action["outputs"][output]["value"].as_str().unwrap().contains(&format!("steps.ci.outputs.{output}")));
    }
}
