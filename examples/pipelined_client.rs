//! The smallest pipelined stdio client: the floor `scripts/bench-generator` holds the load
//! engine's CPU per call against. One thread, blocking I/O, no runtime: one read of everything
//! available, every complete line parsed by its fields, one write of the next calls. It
//! measures nothing but a count, so whatever the engine spends beyond it is the engine's.
//!
//!     cargo run --release --example pipelined_client -- SECONDS IN_FLIGHT [--stateless] [--rate R] -- SERVER ARGS...
//!
//! With `--rate R`, the open model's floor instead: one call every 1/R s (a sleep until its
//! time, one write, a blocking read until its answer), in flight one at a time.
//! Prints `calls N cpu_us_per_call X`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(serde::Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    result: Option<&'a serde_json::value::RawValue>,
}

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"p","version":"0"}},"#;

fn cpu_seconds() -> f64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("process clock");
    t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let split = args.iter().position(|a| a == "--").expect("usage: SECONDS IN_FLIGHT [--stateless] -- SERVER...");
    let seconds: f64 = args[1].parse().expect("seconds");
    let in_flight: u64 = args[2].parse().expect("in flight");
    let meta = if args[..split].iter().any(|a| a == "--stateless") { META } else { "" };
    let rate: Option<f64> =
        args[..split].iter().position(|a| a == "--rate").map(|i| args[i + 1].parse().expect("a rate"));
    let mut child = Command::new(&args[split + 1])
        .args(&args[split + 2..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server starts");
    let (mut stdin, mut stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let mut buf = vec![0u8; 1 << 16];
    let (mut filled, mut out) = (0, Vec::new());
    if meta.is_empty() {
        stdin.write_all(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"p","version":"0"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
"#).unwrap();
        while !buf[..filled].contains(&b'\n') {
            filled += stdout.read(&mut buf[filled..]).unwrap();
        }
        filled = 0;
    }
    let mut next = 1u64;
    let call = |out: &mut Vec<u8>, next: &mut u64| {
        let _ = write!(
            out,
            r#"{{"jsonrpc":"2.0","id":{next},"method":"tools/call","params":{{{meta}"name":"echo","arguments":{{"message":"hello"}}}}}}"#
        );
        out.push(b'\n');
        *next += 1;
    };
    let (start, cpu0, mut done) = (Instant::now(), cpu_seconds(), 0u64);
    if let Some(rate) = rate {
        while start.elapsed() < Duration::from_secs_f64(seconds) {
            let due = start + Duration::from_secs_f64(done as f64 / rate);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            call(&mut out, &mut next);
            stdin.write_all(&out).unwrap();
            out.clear();
            loop {
                let n = stdout.read(&mut buf[filled..]).unwrap();
                assert!(n > 0, "the server closed its stdout");
                filled += n;
                if buf[..filled].contains(&b'\n') {
                    break;
                }
            }
            filled = 0;
            done += 1;
        }
        let cpu = cpu_seconds() - cpu0;
        println!("calls {done} cpu_us_per_call {:.2}", cpu * 1e6 / done as f64);
        drop(stdin);
        let _ = child.wait();
        return;
    }
    for _ in 0..in_flight {
        call(&mut out, &mut next);
    }
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        stdin.write_all(&out).unwrap();
        out.clear();
        let n = stdout.read(&mut buf[filled..]).unwrap();
        assert!(n > 0, "the server closed its stdout");
        filled += n;
        let mut from = 0;
        while let Some(len) = buf[from..filled].iter().position(|&b| b == b'\n') {
            let line: Incoming = serde_json::from_slice(&buf[from..from + len]).expect("a JSON-RPC line");
            if line.id.is_some() && line.result.is_some() {
                done += 1;
                call(&mut out, &mut next);
            }
            from += len + 1;
        }
        buf.copy_within(from..filled, 0);
        filled -= from;
    }
    let cpu = cpu_seconds() - cpu0;
    println!("calls {done} cpu_us_per_call {:.2}", cpu * 1e6 / done as f64);
    drop(stdin);
    let _ = child.wait();
}
