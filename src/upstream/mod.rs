//! The upstream simulator (`mcp-perfcheck upstream --listen ADDR`): the external API the
//! reference server's tools call, made slow or broken on cue. Every answer is drawn from a
//! seeded sequence (latency distribution, error rate), and faults are scheduled through an
//! admin endpoint and end by themselves.
//!
//! Endpoints:
//! - `GET /items/{id}`: `{"id", "name", "price"}` (ids starting with `missing` are 404);
//! - `POST /items/batch` with `{"ids": [...]}`: `{"items": {id: item}}`, missing ids left out;
//! - `GET /slow?ms=N`: answers after N ms more;
//! - `GET /healthz`;
//! - `GET|PUT /admin/behaviour`: the latency distribution and error rate (JSON);
//! - `POST /admin/faults` (`{"kind": "outage", "mode": "refuse", "after": "0s", "duration":
//!   "3s"}`; kinds `outage` (`refuse` | `unavailable`), `slowdown` (`latency`), `error_burst`
//!   (`rate`, `status`)), `GET /admin/faults`, `DELETE /admin/faults`;
//! - `GET /admin/stats`: requests served and errors injected.
//!
//! A refusing outage closes the port (open connections are cut), so the admin endpoint is
//! unreachable until it ends: schedule what follows before it starts.

pub mod behaviour;
pub mod faults;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use behaviour::{Behaviour, Latency};
pub use faults::{FaultKind, FaultSpec, OutageMode};

use behaviour::Dice;
use faults::Scheduled;

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub listen: SocketAddr,
    pub behaviour: Behaviour,
    pub seed: u64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig { listen: ([127, 0, 0, 1], 0).into(), behaviour: Behaviour::default(), seed: 1 }
    }
}

/// What the simulator has done, for tests and `GET /admin/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulatorStats {
    pub requests: u64,
    pub items: u64,
    pub batches: u64,
    pub errors_injected: u64,
    /// Outages during which the port was closed.
    pub refusals: u64,
}

struct State {
    behaviour: Mutex<Behaviour>,
    faults: Mutex<Vec<Scheduled>>,
    dice: Dice,
    /// Woken when a fault is scheduled, so the accept loop re-plans.
    changed: Notify,
    requests: AtomicU64,
    items: AtomicU64,
    batches: AtomicU64,
    errors_injected: AtomicU64,
    refusals: AtomicU64,
}

impl State {
    fn faults(&self) -> std::sync::MutexGuard<'_, Vec<Scheduled>> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer's latency and error for one request now.
    fn draw(&self) -> behaviour::Draw {
        let base = self.behaviour.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let effective = faults::effective(&base, &self.faults(), Instant::now());
        self.dice.draw(&effective)
    }

    fn stats(&self) -> SimulatorStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimulatorStats {
            requests: get(&self.requests),
            items: get(&self.items),
            batches: get(&self.batches),
            errors_injected: get(&self.errors_injected),
            refusals: get(&self.refusals),
        }
    }
}

/// A running simulator; stopped when [`Simulator::stop`] is called or it is dropped.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    /// Binds `config.listen` (port 0: any free port) and serves in the background.
    pub async fn start(config: SimulatorConfig) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            behaviour: Mutex::new(config.behaviour),
            faults: Mutex::new(Vec::new()),
            dice: Dice::new(config.seed),
            changed: Notify::new(),
            requests: AtomicU64::new(0),
            items: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            errors_injected: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, addr, Arc::clone(&state), stop.clone()));
        Ok(Simulator { addr, state, stop, task: Some(task) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL for the runtime's upstream config.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Schedules a fault (as `POST /admin/faults` does).
    pub fn schedule(&self, spec: FaultSpec) {
        schedule(&self.state, spec);
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap_or_else(|e| e.into_inner()) = behaviour;
    }

    pub fn stats(&self) -> SimulatorStats {
        self.state.stats()
    }

    /// Stops accepting, cuts open connections and waits for the server task.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn schedule(state: &State, spec: FaultSpec) {
    let now = Instant::now();
    let mut faults = state.faults();
    faults.retain(|f| f.ends > now);
    faults.push(Scheduled::new(spec, now));
    drop(faults);
    state.changed.notify_one();
}

async fn accept_loop(mut listener: TcpListener, addr: SocketAddr, state: Arc<State>, stop: CancellationToken) {
    let app = router(Arc::clone(&state));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let now = Instant::now();
        let refusing = faults::refusing_until(&state.faults(), now);
        if let Some(until) = refusing {
            // The outage: no port, no connections, until it ends.
            state.refusals.fetch_add(1, Ordering::Relaxed);
            drop(listener);
            connections.abort_all();
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = stop.cancelled() => return,
            }
            listener = match rebind(addr, &stop).await {
                Some(l) => l,
                None => return,
            };
            continue;
        }
        let next_start = state.faults().iter().flat_map(|f| [f.starts, f.ends]).filter(|t| *t > now).min();
        let replan = async {
            match next_start {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Nagle against delayed ACK turns a sub-millisecond answer into a 40 ms one.
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = state.changed.notified() => {}
            _ = replan => {}
            _ = stop.cancelled() => {
                connections.abort_all();
                return;
            }
        }
    }
}

/// Binds the port again after an outage (another process may hold it for a moment).
async fn rebind(addr: SocketAddr, stop: &CancellationToken) -> Option<TcpListener> {
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(_) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    _ = stop.cancelled() => return None,
                }
            }
        }
    }
}

fn router(state: Arc<State>) -> axum::Router {
    axum::Router::new()
        .route("/items/{id}", get(item))
        .route("/items/batch", post(batch))
        .route("/slow", get(slow))
        .route("/healthz", get(|| async { "ok" }))
        .route("/admin/behaviour", get(get_behaviour).put(put_behaviour))
        .route("/admin/faults", get(list_faults).post(post_fault).delete(clear_faults))
        .route("/admin/stats", get(|Extract(s): Extract<Arc<State>>| async move { Json(s.stats()) }))
        .with_state(state)
}

/// Waits the drawn latency; `Err` with the injected error's response.
async fn answer(state: &State, extra: Duration) -> Result<(), Response> {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let draw = state.draw();
    tokio::time::sleep(draw.latency + extra).await;
    match draw.error {
        Some(status) => {
            state.errors_injected.fetch_add(1, Ordering::Relaxed);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Err((status, Json(json!({"error": "injected by the upstream simulator"}))).into_response())
        }
        None => Ok(()),
    }
}

/// The item `id`, the same every time.
fn item_for(id: &str) -> Option<Value> {
    if id.starts_with("missing") {
        return None;
    }
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Some(json!({"id": id, "name": format!("item {id}"), "price": (h % 100_000) as f64 / 100.0}))
}

async fn item(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> Response {
    if let Err(e) = answer(&state, Duration::ZERO).await {
        return e;
    }
    state.items.fetch_add(1, Ordering::Relaxed);
    match item_for(&id) {
        Some(item) => Json(item).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": format!("no item {id}")}))).into_response(),
    }
}

#[derive(Deserialize)]
struct BatchRequest {
    ids: Vec<String>,
}

async fn batch(Extract(state): Extract<Arc<State>>, Json(request): Json<BatchRequest>) -> Response {
    if let Err(e) = answer(&state, Duration::ZERO).await {
        return e;
    }
    state.batches.fetch_add(1, Ordering::Relaxed);
    let items: BTreeMap<_, _> = request.ids.iter().filter_map(|id| Some((id.clone(), item_for(id)?))).collect();
    Json(json!({ "items": items })).into_response()
}

#[derive(Deserialize)]
struct SlowQuery {
    #[serde(default)]
    ms: u64,
}

async fn slow(Extract(state): Extract<Arc<State>>, Query(q): Query<SlowQuery>) -> Response {
    match answer(&state, Duration::from_millis(q.ms.min(60_000))).await {
        Ok(()) => Json(json!({"slept_ms": q.ms})).into_response(),
        Err(e) => e,
    }
}

async fn get_behaviour(Extract(state): Extract<Arc<State>>) -> Json<Behaviour> {
    Json(state.behaviour.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

async fn put_behaviour(Extract(state): Extract<Arc<State>>, Json(b): Json<Behaviour>) -> Json<Behaviour> {
    *state.behaviour.lock().unwrap_or_else(|e| e.into_inner()) = b.clone();
    Json(b)
}

#[derive(Serialize)]
struct FaultView {
    #[serde(flatten)]
    spec: FaultSpec,
    active: bool,
    /// Milliseconds from now (negative: in the past).
    starts_in_ms: i64,
    ends_in_ms: i64,
}

async fn list_faults(Extract(state): Extract<Arc<State>>) -> Json<Vec<FaultView>> {
    let now = Instant::now();
    let ms = |t: Instant| {
        if t >= now { t.duration_since(now).as_millis() as i64 } else { -(now.duration_since(t).as_millis() as i64) }
    };
    Json(
        state
            .faults()
            .iter()
            .map(|f| FaultView {
                spec: f.spec.clone(),
                active: f.active(now),
                starts_in_ms: ms(f.starts),
                ends_in_ms: ms(f.ends),
            })
            .collect(),
    )
}

async fn post_fault(Extract(state): Extract<Arc<State>>, Json(spec): Json<FaultSpec>) -> (StatusCode, Json<FaultSpec>) {
    schedule(&state, spec.clone());
    (StatusCode::CREATED, Json(spec))
}

async fn clear_faults(Extract(state): Extract<Arc<State>>) -> StatusCode {
    state.faults().clear();
    state.changed.notify_one();
    StatusCode::NO_CONTENT
}
