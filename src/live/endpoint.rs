//! The HTTP endpoint of `--live-metrics`: `GET /metrics` while the run measures, and, when
//! something has been scraping, until one scrape has seen the final figures.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tokio_util::sync::CancellationToken;

use super::LiveMetrics;

/// The longest the run waits at its end for a last scrape.
const MOST_LINGER: Duration = Duration::from_secs(15);

/// The live endpoint, serving until [`Endpoint::finish`].
pub struct Endpoint {
    addr: SocketAddr,
    scrapes: Arc<Mutex<Scrapes>>,
    stop: CancellationToken,
    serving: tokio::task::JoinHandle<()>,
}

/// When the endpoint was scraped: the last two times.
#[derive(Default)]
struct Scrapes {
    last: Option<Instant>,
    before: Option<Instant>,
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<LiveMetrics>,
    scrapes: Arc<Mutex<Scrapes>>,
}

impl Endpoint {
    /// Binds `addr` and serves `metrics` there.
    pub async fn start(addr: SocketAddr, metrics: Arc<LiveMetrics>) -> std::io::Result<Endpoint> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let scrapes = Arc::new(Mutex::new(Scrapes::default()));
        let shared = Shared { metrics, scrapes: scrapes.clone() };
        let app = axum::Router::new().route("/metrics", axum::routing::get(scrape)).with_state(shared);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned()).await;
        });
        Ok(Endpoint { addr, scrapes, stop, serving })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving, after waiting (when something has been scraping: two scrapes at least)
    /// for one scrape of the final figures: at most two of the scrape intervals seen (and half
    /// a second), and 15 s.
    pub async fn finish(self) {
        let ended = Instant::now();
        let interval = {
            let s = self.scrapes.lock().unwrap_or_else(|e| e.into_inner());
            match (s.before, s.last) {
                (Some(a), Some(b)) => Some(b.saturating_duration_since(a)),
                // One look (a person with curl) is not a scraper to wait for.
                _ => None,
            }
        };
        if let Some(interval) = interval {
            // Two intervals and a little: a scrape due now may come late on a loaded machine.
            let deadline = ended + (interval * 2 + Duration::from_millis(500)).min(MOST_LINGER);
            eprintln!(
                "live metrics: waiting for a last scrape of the final figures (up to {}s)",
                (deadline - ended).as_secs_f64().ceil()
            );
            while Instant::now() < deadline {
                let scraped = self.scrapes.lock().unwrap_or_else(|e| e.into_inner()).last;
                if scraped.is_some_and(|t| t > ended) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.stop.cancel();
        let _ = self.serving.await;
    }
}

async fn scrape(State(shared): State<Shared>) -> impl IntoResponse {
    // When the figures were read, so that `finish` knows whether a scrape saw the final ones.
    let at = Instant::now();
    let body = shared.metrics.render();
    {
        let mut s = shared.scrapes.lock().unwrap_or_else(|e| e.into_inner());
        s.before = s.last;
        s.last = Some(at);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
