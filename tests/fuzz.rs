//! A short seeded run of the fuzz targets (`fuzz/targets.rs`): every parser of untrusted input,
//! a thousand inputs, the same inputs every run. The long run is
//! `scripts/fuzz-parsers`.

#[path = "../fuzz/targets.rs"]
mod targets;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRng, TestRunner};

#[test]
fn no_untrusted_input_panics_a_parser() {
    let seeds = targets::Seeds::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    let strategy = targets::inputs(&seeds);
    let mut runner =
        TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(Config::default().rng_algorithm));
    let mut seen = std::collections::BTreeMap::new();
    let mut accepted_by = std::collections::BTreeMap::new();
    for _ in 0..1000 {
        let input = strategy.new_tree(&mut runner).unwrap().current();
        *seen.entry(input.target()).or_insert(0) += 1;
        let accepted = targets::check(&input);
        *accepted_by.entry(input.target()).or_insert(0) += u32::from(accepted);
    }
    assert_eq!(seen.len(), 5, "every target ran: {seen:?}");
    // Mutations that keep an input valid reach past the parser (the comparison, the renderers).
    assert!(accepted_by.values().all(|&n| n > 0), "some inputs of every target were accepted: {accepted_by:?}");
}
