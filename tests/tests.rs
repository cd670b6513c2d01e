//! Integration tests, through the binary, in one test binary (ripgrep's layout).

mod common;

mod ab;
mod action_install;
mod baseline;
mod calibrate;
mod compare;
mod completions;
mod config_errors;
mod conformance;
mod deploy;
mod failures;
mod faults;
#[cfg(feature = "redis")]
mod fleet;
mod fuzz;
mod github;
mod history;
mod http;
mod https;
mod init;
mod live_metrics;
mod metrics;
mod open_model;
mod peers;
mod phases;
mod protocol;
mod quick;
#[cfg(feature = "redis")]
mod redis;
mod reference;
mod report;
mod run;
mod schema;
mod shards;
mod thresholds;
mod upstream;
mod workflows;
