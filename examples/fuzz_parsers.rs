//! The long fuzz run: the targets of `fuzz/targets.rs` for a given time, a fresh seed each run
//! (or the one given), counting executions per target and how many were accepted (parsed,
//! and for a report or results file compared and rendered). A panic prints the input (cut to 2,000
//! characters), the seed, and exits 1.
//!
//!     cargo run --release --example fuzz_parsers -- SECONDS [SEED]

#[path = "../fuzz/targets.rs"]
mod targets;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).expect("usage: fuzz_parsers SECONDS [SEED]");
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let seeds = targets::Seeds::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    let strategy = targets::inputs(&seeds);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let (start, limit) = (Instant::now(), Duration::from_secs(seconds));
    let mut runs: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    std::panic::set_hook(Box::new(|_| {}));
    while start.elapsed() < limit {
        let input = strategy.new_tree(&mut runner).expect("inputs generate").current();
        let accepted = match catch_unwind(AssertUnwindSafe(|| targets::check(&input))) {
            Ok(accepted) => accepted,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                let shown: String = format!("{input:?}").chars().take(2000).collect();
                println!(
                    "PANIC in target {} (seed {seed}): {}\ninput: {shown}",
                    input.target(),
                    what.unwrap_or_default()
                );
                std::process::exit(1);
            }
        };
        let entry = runs.entry(input.target()).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += u64::from(accepted);
    }
    let total: u64 = runs.values().map(|r| r.0).sum();
    let per: Vec<String> = runs.iter().map(|(t, (n, ok))| format!("{t} {n} ({ok} accepted)")).collect();
    println!(
        "{total} executions in {:.0} s (seed {seed}): {}; panics: 0",
        start.elapsed().as_secs_f64(),
        per.join(", ")
    );
}
