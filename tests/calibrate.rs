//! `calibrate`: A/A comparisons of the reference server, written to a calibration file that
//! `compare` then cites.

use predicates::prelude::*;

use crate::common::{bin, fixture, load_lock, read_json, write_config};

#[test]
fn calibrate_measures_false_alarms_and_detectable_changes_and_compare_cites_it() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let exe = assert_cmd::cargo::cargo_bin("mcp-perfcheck");
    let config = write_config(
        dir.path(),
        &format!(
            r#"
server:
  command: ["{}", "serve"]
workload:
  repetitions: 3
  scenarios:
    - name: work
      concurrency: 2
      duration: 250ms
      mix:
        - {{tool: echo, arguments: {{message: hi}}}}
"#,
            exe.display()
        ),
    );
    let out = dir.path().join("calibration.json");
    bin()
        .arg("calibrate")
        .arg("--config")
        .arg(&config)
        .args(["-n", "2", "--out"])
        .arg(&out)
        .arg("--keep")
        .arg(dir.path().join("kept"))
        .assert()
        .success()
        .stderr(predicate::str::contains("A/A comparison 2/2"))
        .stdout(predicate::str::contains("A/A comparisons").and(predicate::str::contains("detectable (90% power)")))
        .stdout(predicate::str::contains("gate").and(predicate::str::contains("gates")));
    // Each A/A comparison kept, for `compare` to show again.
    for k in [1, 2] {
        let kept = dir.path().join(format!("kept/aa-{k}.json"));
        bin().arg("compare").arg(&kept).assert().stdout(predicate::str::contains("Method:"));
    }
    let c = read_json(&out);
    assert_eq!(c["schema"], "mcp-perfcheck/calibration/v1");
    assert_eq!((c["comparisons"].as_u64(), c["repetitions"].as_u64()), (Some(2), Some(3)));
    let false_alarms = c["false_alarms"].as_u64().unwrap();
    assert!(false_alarms <= 2 && c["rate_high"].as_f64().unwrap() > 0.5, "{c:#}");
    let p50 = c["metrics"].as_array().unwrap().iter().find(|m| m["metric"] == "p50").expect("a p50 row");
    assert!(p50["sd"].as_f64().unwrap() > 0.0 && p50["smallest_detectable"].as_f64().unwrap() > 0.0, "{p50}");
    assert_eq!(p50["min_effect"].as_f64(), Some(0.05));

    let compare = |calibration: &std::path::Path| {
        bin()
            .arg("compare")
            .arg(fixture("results/reference-quick.json"))
            .arg(fixture("results/reference-small.json"))
            .arg("--calibration")
            .arg(calibration)
            .assert()
    };
    compare(&out)
        .stdout(predicate::str::contains(format!("Calibrated false-alarm rate: {false_alarms} of 2 A/A comparisons")));
    std::fs::write(&out, "{\"schema\": \"mcp-perfcheck/calibration/v1\"").unwrap();
    compare(&out).code(2).stderr(predicate::str::contains("is not a usable calibration file"));
}
