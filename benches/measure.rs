//! The per-request cost of recording, and the cost of deciding. Run: `cargo bench --bench measure`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_perfcheck::config::MixEntry;
use mcp_perfcheck::load::CompiledMix;
use mcp_perfcheck::measure::{LatencyHistogram, OperationRecorder};
use mcp_perfcheck::results::Results;
use mcp_perfcheck::stats::{self, Policy};

fn recording(c: &mut Criterion) {
    let mut rec = OperationRecorder::default();
    let mut us = 0u64;
    c.bench_function("record one successful call", |b| {
        b.iter(|| {
            us = (us + 7919) % 50_000;
            let d = black_box(Duration::from_micros(us));
            rec.success(d, d);
        })
    });
    let mut open = OperationRecorder::with_uncorrected();
    c.bench_function("record one successful call, open model (two histograms)", |b| {
        b.iter(|| {
            us = (us + 7919) % 50_000;
            open.success(black_box(Duration::from_micros(us + 100)), black_box(Duration::from_micros(us)));
        })
    });
    let mix = CompiledMix::new(&[MixEntry::tool("echo", 3), MixEntry::tool("compute", 1)]);
    let mut n = 0u64;
    c.bench_function("pick the next operation", |b| {
        b.iter(|| {
            n += 1;
            black_box(mix.pick(n))
        })
    });
    let mut h = LatencyHistogram::new();
    for i in 0..100_000u64 {
        h.record(Duration::from_micros(50 + i % 5000));
    }
    c.bench_function("encode a histogram (V2+DEFLATE, base64)", |b| b.iter(|| black_box(h.encode())));
}

fn deciding(c: &mut Criterion) {
    let root = env!("CARGO_MANIFEST_DIR");
    let base = Results::load(format!("{root}/fixtures/results/reference-quick.json").as_ref()).unwrap();
    let head = Results::load(format!("{root}/fixtures/results/reference-slow.json").as_ref()).unwrap();
    let policy = Policy::DEFAULT;
    c.bench_function("compare two runs (2 operations, 11 metrics, pooled-p99 bootstrap)", |b| {
        b.iter(|| black_box(stats::compare(&base, &head, &policy)))
    });
}

criterion_group!(benches, recording, deciding);
criterion_main!(benches);
