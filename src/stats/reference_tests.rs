//! Every statistic checked against `fixtures/stats/reference.json`, produced with SciPy by
//! `fixtures/stats/generate.py`, and the error-rate test against `error_rates.json`, from
//! statsmodels and SciPy by `generate_error_rates.py`, to 1e-9 relative.

use serde_json::Value;

use super::*;

const REFERENCE: &str = include_str!("../../fixtures/stats/reference.json");

fn reference(section: &str) -> Vec<Value> {
    let all: Value = serde_json::from_str(REFERENCE).expect("reference.json parses");
    all[section].as_array().unwrap_or_else(|| panic!("no section {section}")).clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number")).collect()
}

#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    let tolerance = 1e-9 * want.abs().max(1e-300);
    assert!((got - want).abs() <= tolerance, "{what}: got {got}, SciPy {want}");
}

#[test]
fn welch_matches_scipy() {
    for case in reference("welch") {
        let t = welch_log_ratio(&floats(&case["base"]), &floats(&case["head"]), CONFIDENCE).unwrap();
        for (got, key) in [(t.ratio, "ratio"), (t.ratio_low, "ratio_low"), (t.ratio_high, "ratio_high")] {
            close(got, case[key].as_f64().unwrap(), key);
        }
        close(t.p_value, case["p_value"].as_f64().unwrap(), "p_value");
        close(t.df, case["df"].as_f64().unwrap(), "df");
    }
}

#[test]
fn welch_difference_matches_scipy() {
    for case in reference("welch_difference") {
        let t = welch_difference(&floats(&case["base"]), &floats(&case["head"]), CONFIDENCE).unwrap();
        for (got, key) in
            [(t.difference, "difference"), (t.low, "low"), (t.high, "high"), (t.p_value, "p_value"), (t.df, "df")]
        {
            close(got, case[key].as_f64().unwrap(), key);
        }
    }
}

#[test]
fn calibration_intervals_and_power_match_scipy() {
    for case in reference("clopper_pearson") {
        let (k, n) = (case["k"].as_u64().unwrap() as usize, case["n"].as_u64().unwrap() as usize);
        let (low, high) = clopper_pearson(k, n, 0.95);
        close(low.max(1e-300), case["low"].as_f64().unwrap().max(1e-300), "low");
        close(high, case["high"].as_f64().unwrap(), "high");
    }
    for case in reference("detectable") {
        let n = case["n"].as_u64().unwrap() as usize;
        let m = case["m"].as_u64().unwrap() as usize;
        let shift = power::detectable_shift(
            case["sd"].as_f64().unwrap(),
            n,
            m,
            case["alpha"].as_f64().unwrap(),
            power::Design::Independent,
        );
        close(shift, case["shift"].as_f64().unwrap(), "shift");
    }
}

#[test]
fn mann_whitney_matches_scipy_exact_and_approximate() {
    let cases = reference("mann_whitney");
    assert!(cases.iter().any(|c| c["exact"] == true) && cases.iter().any(|c| c["exact"] == false));
    for case in cases {
        let t = mann_whitney(&floats(&case["base"]), &floats(&case["head"])).unwrap();
        assert_eq!(t.exact, case["exact"].as_bool().unwrap(), "{case}");
        close(t.u, case["u"].as_f64().unwrap(), "u");
        close(t.p_value, case["p_value"].as_f64().unwrap(), "p_value");
    }
}

#[test]
fn hodges_lehmann_matches_the_reference() {
    for case in reference("hodges_lehmann") {
        let h = hodges_lehmann(&floats(&case["base"]), &floats(&case["head"]), CONFIDENCE).unwrap();
        for (got, key) in
            [(h.shift, "shift"), (h.low, "low"), (h.high, "high"), (h.achieved_confidence, "achieved_confidence")]
        {
            close(got, case[key].as_f64().unwrap(), key);
        }
    }
}

#[test]
fn benjamini_hochberg_matches_scipy() {
    for case in reference("benjamini_hochberg") {
        let q = benjamini_hochberg(&floats(&case["p"]));
        for (got, want) in q.iter().zip(floats(&case["q"])) {
            close(*got, want, "q");
        }
    }
}

#[test]
fn the_bootstrap_matches_its_reimplementation() {
    for case in reference("bootstrap") {
        let side = |key: &str| case[key].as_array().unwrap().iter().map(floats).collect::<Vec<_>>();
        let p99 = |reps: &[&Vec<f64>]| pooled_quantile(reps, 0.99);
        let iterations = case["iterations"].as_u64().unwrap() as usize;
        let b =
            bootstrap_ratio(&side("base"), &side("head"), p99, iterations, case["seed"].as_u64().unwrap(), CONFIDENCE)
                .unwrap();
        for (got, key) in [(b.ratio, "ratio"), (b.low, "low"), (b.high, "high")] {
            close(got, case[key].as_f64().unwrap(), key);
        }
    }
}

#[test]
fn error_rate_tests_match_statsmodels_and_scipy() {
    let all: Value =
        serde_json::from_str(include_str!("../../fixtures/stats/error_rates.json")).expect("error_rates.json parses");
    for case in all["error_rates"].as_array().expect("cases") {
        let calls = case["calls"].as_u64().unwrap();
        let side = |key: &str| -> Vec<Counts> {
            case[key].as_array().unwrap().iter().map(|k| Counts { errors: k.as_u64().unwrap(), calls }).collect()
        };
        let t = error_rate_test(&side("base"), &side("head"), CONFIDENCE).unwrap();
        for (got, key) in [(t.dispersion, "dispersion"), (t.p_value, "p_value"), (t.low, "low"), (t.high, "high")] {
            close(got, case[key].as_f64().unwrap(), &format!("{key} of {case}"));
        }
    }
}
