//! The smallest Streamable HTTP load client: the floor `scripts/bench-generator` holds the
//! engine's HTTP cost against. One thread (a current-thread runtime), one task per connection
//! that owns it (hyper's `client::conn::http1`, TCP_NODELAY), each sending `echo` calls one
//! after another in the stateless era and reading each answer whole (JSON or SSE). It parses
//! nothing; whatever the engine spends beyond it is the engine's.
//!
//!     cargo run --release --example http_floor -- SECONDS CONNECTIONS URL
//!
//! Prints `calls N cpu_us_per_call X`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"floor","version":"0"}},"name":"echo","arguments":{"message":"hello"}}}"#;

fn cpu_seconds() -> f64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("process clock");
    t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args[1].parse().expect("seconds");
    let connections: usize = args[2].parse().expect("connections");
    let uri: http::Uri = args[3].parse().expect("a URL");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    let done = Rc::new(Cell::new(0u64));
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    let until = start + Duration::from_secs_f64(seconds);
    local.block_on(&runtime, async {
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (uri, done) = (uri.clone(), done.clone());
            tasks.push(tokio::task::spawn_local(async move {
                let addr = format!("{}:{}", uri.host().unwrap(), uri.port_u16().unwrap());
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
                tokio::task::spawn_local(conn);
                while Instant::now() < until {
                    let request = http::Request::post(uri.clone())
                        .header("host", uri.authority().unwrap().as_str())
                        .header("accept", "application/json, text/event-stream")
                        .header("content-type", "application/json")
                        .header("mcp-protocol-version", "2026-07-28")
                        .header("mcp-method", "tools/call")
                        .header("mcp-name", "echo")
                        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                        .unwrap();
                    let response = sender.send_request(request).await.unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                    response.into_body().collect().await.unwrap();
                    done.set(done.get() + 1);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let cpu = cpu_seconds() - cpu0;
    println!("calls {} cpu_us_per_call {:.2}", done.get(), cpu * 1e6 / done.get() as f64);
}
