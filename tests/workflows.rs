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
fn the_action_passes_inputs_to_its_scripts_only_through_env_and_only_flags_its_commands_have() {
    let action: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("action.yml")).unwrap()).unwrap();
    assert_eq!(action["runs"]["using"], "composite");
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    let scripts: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(scripts.len() >= 3);
    for script in &scripts {
        assert!(!script.contains("${{"), "an expression inside a script is an injection: {script}");
    }
    // Each array of arguments a script builds, and the command whose flags it may use.
    let mut checked = 0;
    for (array, command, at_least) in [("args", "ci", 8), ("merge_args", "merge", 2), ("run_args", "run", 3)] {
        let help = bin().args([command, "--help"]).output().unwrap();
        let help = String::from_utf8(help.stdout).unwrap();
        let script = scripts
            .iter()
            .find(|s| s.contains(&format!("mcp-perfcheck \"${{{array}[@]}}\"")))
            .unwrap_or_else(|| panic!("the step that runs {command}"));
        let flags = flags_of(script, array);
        assert!(flags.len() >= at_least, "{command}: {flags:?}");
        for flag in &flags {
            let known = help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n"));
            assert!(known, "`{command}` has no {flag}");
            checked += 1;
        }
    }
    assert!(checked >= 13);
    for output in ["verdict", "report-path"] {
        assert!(action["outputs"][output]["value"].as_str().unwrap().contains(&format!("steps.ci.outputs.{output}")));
    }
    assert!(action["outputs"]["shard-path"]["value"].as_str().unwrap().contains("steps.shard.outputs.shard-path"));
}

/// The flags a script puts into the bash array `array` (`array=(…)` or `array+=(…)`, to its
/// closing parenthesis, which may be lines later).
fn flags_of(script: &str, array: &str) -> Vec<String> {
    let flags = |text: &str| -> Vec<String> {
        text.split([' ', '(']).filter(|f| f.starts_with("--") && f.len() > 2).map(String::from).collect()
    };
    let mut found = Vec::new();
    let mut open = false;
    for line in script.lines() {
        let mut rest = line;
        if !open {
            let start = line
                .split_whitespace()
                .find(|w| w.starts_with(&format!("{array}=(")) || w.starts_with(&format!("{array}+=(")));
            let Some(word) = start else { continue };
            rest = &line[line.find(word).unwrap()..];
        }
        let statement = rest.split(')').next().unwrap_or("");
        found.extend(flags(statement));
        open = !rest.contains(')');
    }
    found
}
