//! Shell completions and the man page, generated from the command line's definition.

use predicates::prelude::*;

use crate::common::bin;

#[test]
fn completions_know_the_commands_and_the_quick_mode_flags_in_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = bin().args(["completions", shell]).assert().success().get_output().stdout.clone();
        let script = String::from_utf8(out).unwrap();
        for word in ["compare", "baseline", "print-config", "url", "min-effect"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    // The bash script is valid bash.
    let script = bin().args(["completions", "bash"]).assert().success().get_output().stdout.clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp-perfcheck.bash");
    std::fs::write(&path, script).unwrap();
    let checked = std::process::Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(checked.success());
    bin().args(["completions", "tcsh"]).assert().code(2).stderr(predicate::str::contains("possible values"));
}

#[test]
fn the_man_page_has_the_commands_and_exit_codes() {
    let page = bin().arg("man").assert().success().get_output().stdout.clone();
    let page = String::from_utf8(page).unwrap();
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{}", &page[..page.len().min(200)]);
    assert!(page.contains(".TH mcp-perfcheck 1"), "{}", &page[..page.len().min(400)]);
    for word in ["compare", "calibrate", "Exit codes"] {
        assert!(page.contains(word), "the man page lacks {word}");
    }
    // With --dir, the pages it refers to are written beside it.
    let dir = tempfile::tempdir().unwrap();
    bin().args(["man", "--dir"]).arg(dir.path()).assert().success();
    for page in ["mcp-perfcheck.1", "mcp-perfcheck-run.1", "mcp-perfcheck-compare.1", "mcp-perfcheck-baseline-save.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
    let run = std::fs::read_to_string(dir.path().join("mcp-perfcheck-run.1")).unwrap();
    assert!(run.contains("print\\-config"), "the run page documents quick mode");
}
