//! Prototype: how much of an A/A comparison's spread on a noisy machine comes from measuring
//! the two sides at different moments. Each repetition of one build is measured twice over:
//!
//! - **sequential**, as `run --base-ref` does today: a fresh server for side A, 0.3 s warm-up
//!   and 1 s of echo calls one at a time, then the same for side B (order drawn per pair);
//! - **interleaved**: fresh servers for both sides at once, the calls alternating between them
//!   (order drawn per pair of calls) for the same warm-up and window, so both sides see the
//!   same moments of the machine.
//!
//! The two designs take turns, repetition by repetition, so they share the machine's moods.
//! Prints, per design, the spread of the pairs' log ratio of p50 (ns resolution) and the 95%
//! interval half-width it gives in the same wall time (interleaving measures a pair in half
//! the time, so it fits twice as many pairs).
//!
//! `--compute-every K` makes every K-th call `compute` (100,000 iterations) as in the
//! reference server's mix (echo 3 : compute 1 is K = 4); the spreads are of the echo p50.
//! `--sequential-only` skips the interleaved design (`scripts/bench-noise-floor` uses it as
//! the smallest client that could measure this machine better than `mcp-perfcheck`).
//!
//!     cargo run --release --example interleaved_ab -- PAIRS [--compute-every K] [--sequential-only] -- SERVER ARGS...

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const WARMUP: Duration = Duration::from_millis(300);
const WINDOW: Duration = Duration::from_secs(1);

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
    next: u64,
    /// Every `compute_every`-th call is `compute` (0: echo only).
    compute_every: u64,
}

impl Server {
    fn start(cmd: &[String], compute_every: u64) -> Server {
        let mut child =
            Command::new(&cmd[0]).args(&cmd[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("starts");
        let (stdin, stdout) = (child.stdin.take().unwrap(), BufReader::new(child.stdout.take().unwrap()));
        let mut s = Server { child, stdin, stdout, line: String::new(), next: 1, compute_every };
        s.send(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"p","version":"0"}}}"#);
        s.answer();
        s.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        s
    }

    fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    fn answer(&mut self) {
        loop {
            self.line.clear();
            assert!(self.stdout.read_line(&mut self.line).unwrap() > 0, "the server ended");
            if self.line.contains("\"id\"") {
                return;
            }
        }
    }

    /// One call's latency, ns, if it was an echo (`None` for a compute call of the mix).
    fn call(&mut self) -> Option<u64> {
        let id = self.next;
        self.next += 1;
        let compute = self.compute_every > 0 && id.is_multiple_of(self.compute_every);
        let (tool, arguments) =
            if compute { ("compute", r#"{"iterations":100000}"#) } else { ("echo", r#"{"message":"hi"}"#) };
        let req = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
        );
        let t = Instant::now();
        self.send(&req);
        self.answer();
        let ns = t.elapsed().as_nanos() as u64;
        (!compute).then_some(ns)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SplitMix64: the order draws.
fn coin(state: &mut u64) -> bool {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) & 1 == 1
}

fn median(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64
}

/// One side alone: warm-up, then the window's latencies.
fn alone(cmd: &[String], compute_every: u64) -> f64 {
    let mut s = Server::start(cmd, compute_every);
    let start = Instant::now();
    while start.elapsed() < WARMUP {
        s.call();
    }
    let (start, mut lat) = (Instant::now(), Vec::new());
    while start.elapsed() < WINDOW {
        lat.extend(s.call());
    }
    median(lat)
}

/// Both sides at once, calls alternating.
fn together(cmd: &[String], compute_every: u64, seed: &mut u64) -> (f64, f64) {
    let mut sides = [Server::start(cmd, compute_every), Server::start(cmd, compute_every)];
    let mut lat = [Vec::new(), Vec::new()];
    let start = Instant::now();
    while start.elapsed() < WARMUP + WINDOW {
        let measuring = start.elapsed() >= WARMUP;
        let order = if coin(seed) { [0, 1] } else { [1, 0] };
        for k in order {
            let ns = sides[k].call();
            if measuring {
                lat[k].extend(ns);
            }
        }
    }
    let [a, b] = lat;
    (median(a), median(b))
}

fn summary(name: &str, ratios: &[f64], pairs_in_budget: f64) {
    let n = ratios.len() as f64;
    let mean = ratios.iter().sum::<f64>() / n;
    let sd = (ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    // The half-width of a 95% interval at the pairs the same wall time holds (normal quantile).
    println!(
        "{name:<12} pairs {n:>3}  mean log ratio {:+.2}%  spread {:.2}%  95% half-width at {pairs_in_budget:.0} pairs {:.2}%",
        100.0 * mean,
        100.0 * sd,
        100.0 * 1.96 * sd / pairs_in_budget.sqrt()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: PAIRS [--compute-every K] [--sequential-only] -- SERVER ARGS...";
    let split = args.iter().position(|a| a == "--").expect(usage);
    let pairs: usize = args[1].parse().expect(usage);
    let flags = &args[2..split];
    let compute_every = flags
        .iter()
        .position(|a| a == "--compute-every")
        .map_or(0, |i| flags.get(i + 1).and_then(|k| k.parse().ok()).expect(usage));
    let sequential_only = flags.iter().any(|a| a == "--sequential-only");
    let cmd = &args[split + 1..];
    let mut seed = 7u64;
    let (mut sequential, mut interleaved) = (Vec::new(), Vec::new());
    let (mut t_seq, mut t_int) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..pairs {
        let t = Instant::now();
        let (a, b) = if coin(&mut seed) {
            let a = alone(cmd, compute_every);
            (a, alone(cmd, compute_every))
        } else {
            let b = alone(cmd, compute_every);
            (alone(cmd, compute_every), b)
        };
        sequential.push((b / a).ln());
        t_seq += t.elapsed();
        if sequential_only {
            continue;
        }
        let t = Instant::now();
        let (a, b) = together(cmd, compute_every, &mut seed);
        interleaved.push((b / a).ln());
        t_int += t.elapsed();
    }
    // In a budget of the sequential design's time: how many pairs each design fits.
    let budget = t_seq.as_secs_f64();
    let per_int = t_int.as_secs_f64() / pairs as f64;
    summary("sequential", &sequential, pairs as f64);
    if !sequential_only {
        summary("interleaved", &interleaved, budget / per_int);
    }
}
