//! Integration tests that must have the machine to themselves.
//!
//! The tests in `tests/tests.rs` run two at a time, and a test there that measures levels of a
//! tenth of a millisecond across minutes feels whichever neighbour starts (a Chromium, an SDK's
//! interpreter, a Redis): in CI, eight commits in a row of a forty-commit history read a third
//! slower while one did. `cargo test` runs one test binary at a time, so a test here shares the
//! machine with nothing of ours.

// Each test binary uses part of the shared helpers.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;

mod history;
