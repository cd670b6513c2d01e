//! The reference server's own cost per `tools/call`, in process: rmcp's whole server path
//! (decode, route, handler, encode) over an in-memory pipe, without the kernel and without a
//! second process on the machine. `scripts/bench-servers` measures the same calls between
//! processes, where scheduling noise of ±15% hides differences of a microsecond; this bench
//! compares `echo` with `lookup` on a cache hit to within a few percent.
//!
//! A third server answers `lookup` with the very same answer built from a constant item,
//! without the runtime: `lookup` minus that is what the runtime stack costs a cache hit, and
//! the rest of `lookup`'s difference from `echo` is its larger answer.
//!
//! Each batch writes 16 requests at once (as 16 calls in flight would arrive) and reads the 16
//! answers; figures are per call. Not criterion: rounds of the three tools interleave so that
//! the machine's drift (±15% on the development VM) cancels in their ratios.
//!
//!     cargo bench --bench server

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_perfcheck::runtime::{Degradable, Level, RuntimeConfig};
use mcp_perfcheck::server::{LookupArgs, ReferenceServer, ServeOptions, upstreams};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

const IN_FLIGHT: u64 = 16;

/// As the server binary (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Client {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
    line: Vec<u8>,
}

impl Client {
    async fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).await.unwrap();
    }

    /// The next answer, as bytes: the client's share of a call should stay small beside the
    /// server's.
    async fn answer(&mut self) -> &[u8] {
        self.line.clear();
        assert!(self.reader.read_until(b'\n', &mut self.line).await.unwrap() > 0, "the server closed the pipe");
        &self.line
    }
}

/// A server answering `lookup` as the reference server does on a fresh cache hit, from a
/// constant item and without the runtime.
#[derive(Debug, Clone)]
struct NoRuntime {
    tool_router: ToolRouter<Self>,
    item: Arc<serde_json::Value>,
}

#[tool_router]
impl NoRuntime {
    /// Async, as the reference server's `lookup` is (rmcp boxes an async tool's future).
    #[tool(description = "`lookup`'s answer on a fresh cache hit, without the runtime.")]
    async fn lookup(&self, Parameters(LookupArgs { id }): Parameters<LookupArgs>) -> CallToolResult {
        upstreams::lookup_result(&id, &Ok(Degradable { value: Some(self.item.clone()), level: Level::Fresh }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for NoRuntime {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn item() -> serde_json::Value {
    serde_json::json!({"id": "42", "name": "item 42", "price": 623.59})
}

/// The reference server, its `catalog` upstream a mock that answers as the upstream simulator
/// does; a long TTL so that every bench call is a fresh hit.
async fn reference() -> (wiremock::MockServer, ReferenceServer) {
    use wiremock::matchers::any;
    use wiremock::{Mock, ResponseTemplate};
    let upstream = wiremock::MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200).set_body_json(item())).mount(&upstream).await;
    let mut config = RuntimeConfig::from_yaml(upstreams::DEFAULT_RUNTIME, "embedded").unwrap();
    config.upstreams.get_mut("catalog").unwrap().cache.ttl = Duration::from_secs(3600);
    let runtime = upstreams::build_runtime(Some(config), Some(&upstream.uri()), []).unwrap();
    let options = ServeOptions { runtime: Some(Arc::new(runtime)), ..ServeOptions::default() };
    (upstream, ReferenceServer::new(options))
}

/// `server` on the current-thread runtime behind an in-memory pipe, initialized.
async fn connect<S: ServerHandler>(server: S) -> Client {
    let (near, far) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let service = server.serve(far).await.unwrap();
        service.waiting().await.unwrap();
    });
    let (reader, writer) = tokio::io::split(near);
    let mut client = Client { reader: BufReader::new(reader), writer, line: Vec::new() };
    client
        .send(concat!(
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","#,
            r#""capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\n"
        ))
        .await;
    assert!(String::from_utf8_lossy(client.answer().await).contains("serverInfo"));
    client
}

/// One timed round: `calls` calls of `params`, `IN_FLIGHT` at a time; the time per call.
async fn round(client: &mut Client, batch: &str, expected: &str, calls: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..calls / IN_FLIGHT {
        client.send(batch).await;
        // Every answer is read; one per batch is checked.
        let first = String::from_utf8_lossy(client.answer().await).into_owned();
        assert!(first.contains(expected), "{first}");
        for _ in 1..IN_FLIGHT {
            black_box(client.answer().await);
        }
    }
    start.elapsed() / (calls / IN_FLIGHT * IN_FLIGHT) as u32
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

fn main() {
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`) does one short round.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (rounds, calls) = if quick { (1, IN_FLIGHT) } else { (40, 4_000) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (_upstream, reference) = reference().await;
        let mut reference = connect(reference).await;
        let mut no_runtime = connect(NoRuntime { tool_router: NoRuntime::tool_router(), item: Arc::new(item()) }).await;
        let batch = |params: &str| -> String {
            (0..IN_FLIGHT)
                .map(|i| format!("{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"tools/call\",\"params\":{params}}}\n", i + 1))
                .collect()
        };
        let echo = batch(r#"{"name":"echo","arguments":{"message":"hello"}}"#);
        let lookup = batch(r#"{"name":"lookup","arguments":{"id":"42"}}"#);
        let (said, served) = (r#""text":"hello""#, r#""served_by":"fresh""#);
        // Warm-up: fills the cache and the allocator's pages.
        for _ in 0..(if quick { 1 } else { 5 }) {
            round(&mut reference, &echo, said, calls).await;
            round(&mut reference, &lookup, served, calls).await;
            round(&mut no_runtime, &lookup, served, calls).await;
        }
        // Rounds interleave the three, in a rotating order, so that the machine's drift falls
        // on all of them alike; ratios are taken within a round.
        let mut times: [Vec<f64>; 3] = Default::default();
        for r in 0..rounds {
            let mut this = [0.0; 3];
            for k in 0..3 {
                let which = (r + k) % 3;
                let per_call = match which {
                    0 => round(&mut reference, &echo, said, calls).await,
                    1 => round(&mut reference, &lookup, served, calls).await,
                    _ => round(&mut no_runtime, &lookup, served, calls).await,
                };
                this[which] = per_call.as_secs_f64() * 1e6;
            }
            for (t, x) in times.iter_mut().zip(this) {
                t.push(x);
            }
        }
        let ratio = |f: &dyn Fn(usize) -> f64| median((0..rounds).map(f).collect());
        let [e, l, n] = &times;
        println!("rmcp server path per tools/call, in process, {IN_FLIGHT} in flight, medians of {rounds} interleaved rounds of {calls} calls:");
        println!("  echo                                  {:>6.2} µs", median(e.clone()));
        println!("  lookup, cache hit                     {:>6.2} µs   {:.3}× echo", median(l.clone()), ratio(&|i| l[i] / e[i]));
        println!("  the same answer without the runtime   {:>6.2} µs   {:.3}× echo", median(n.clone()), ratio(&|i| n[i] / e[i]));
        println!("  the runtime stack on a hit            {:>6.2} µs   {:.1}% of echo", ratio(&|i| l[i] - n[i]), 100.0 * ratio(&|i| (l[i] - n[i]) / e[i]));
    });
}
