//! The load loop against a scripted target on paused time.

use super::*;
use crate::config::{MixEntry, Profile};
use crate::load::pace::{Model, Window};
use crate::load::timer::TokioSleeper;

/// Answers after `latency`; a call made during `stall` is answered only when it ends.
struct Scripted {
    latency: Duration,
    stall: Option<(Instant, Instant)>,
}

impl Target for Scripted {
    async fn call(&self, _entry: usize, _n: u64, _timeout: Duration) -> Result<ToolOutcome, CallError> {
        let now = Instant::now();
        let begin = match self.stall {
            Some((from, to)) if now >= from && now < to => to,
            _ => now,
        };
        tokio::time::sleep_until(begin + self.latency).await;
        Ok(ToolOutcome::default())
    }
}

fn mix() -> CompiledMix {
    CompiledMix::new(&[MixEntry::tool("echo", 1)])
}

fn scripted(latency_ms: u64) -> Arc<Scripted> {
    Arc::new(Scripted { latency: Duration::from_millis(latency_ms), stall: None })
}

/// A constant rate over the whole window, warm-up included.
fn open(rate: f64, max_in_flight: u32, w: Window) -> Model {
    Model::Open { rate: Profile::constant(rate, w.end - w.start), max_in_flight }
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `model` over `window` against `target` with the given timeout, uncancelled.
async fn drive_with(target: Arc<Scripted>, model: Model, window: Window, timeout: Duration, live: &Live) -> Tally {
    let mut link = TargetLink::new(target);
    let pacer = Pacer::new(model, window);
    let cancel = CancellationToken::new();
    run(
        &mut link,
        &mix(),
        Schedule { pacer, timeout, measure_start: window.measure_start },
        &cancel,
        &mut TokioSleeper,
        live,
    )
    .await
}

async fn drive(target: Arc<Scripted>, model: Model, window: Window) -> Tally {
    let open = matches!(model, Model::Open { .. });
    drive_with(target, model, window, TIMEOUT, &Live::new(1, open, false)).await
}

#[tokio::test(start_paused = true)]
async fn open_model_sends_exactly_at_the_rate_and_measures_from_the_intended_time() {
    let window = Window::new(Duration::from_secs(1), Duration::from_secs(2));
    let t = drive(scripted(3), open(100.0, 4, window), window).await;
    assert_eq!(t.sent, 200, "2 s at 100/s, warm-up excluded");
    assert_eq!((t.late, t.dropped), (0, 0));
    let s = t.recorders[0].latency.summary();
    // 3 ms exactly, within HdrHistogram's 3 significant digits.
    assert!(s.p50.abs_diff(3000) <= 3 && s.max.abs_diff(3000) <= 3, "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn a_stall_shows_in_the_corrected_histogram_and_hides_from_the_uncorrected_one() {
    let window = Window::new(Duration::ZERO, Duration::from_secs(10));
    let stall = (window.start + Duration::from_secs(5), window.start + Duration::from_secs(6));
    let target = Arc::new(Scripted { latency: Duration::from_millis(1), stall: Some(stall) });
    let t = drive(target, open(100.0, 2, window), window).await;
    assert_eq!(t.sent + t.dropped, 1000);
    // The two in-flight slots hang for the second; the ~98 requests due meanwhile leave late,
    // and so do the few due while that backlog drains (2 slots at 1 ms each: ~50 ms).
    assert!((95..=110).contains(&t.late), "late sends: {}", t.late);
    let rec = &t.recorders[0];
    let corrected = rec.latency.summary();
    let uncorrected = rec.uncorrected.as_ref().unwrap().summary();
    assert!(corrected.p99 >= 800_000, "corrected p99 {} µs", corrected.p99);
    assert!(uncorrected.p99 <= 2_000, "uncorrected p99 {} µs", uncorrected.p99);
    assert!(corrected.max >= 990_000 && uncorrected.max >= 990_000, "both see the two stalled calls");
}

#[tokio::test(start_paused = true)]
async fn a_stall_past_the_timeout_lands_at_the_tail_not_outside_the_histogram() {
    // 100/s for 10 s, a 3 s stall from 4 s, a 500 ms timeout: every call due in the stall's
    // first 2.5 s times out at its deadline (from its intended send), and is in the histogram
    // there; the calls of its last half second are answered when it ends.
    let window = Window::new(Duration::ZERO, Duration::from_secs(10));
    let stall = (window.start + Duration::from_secs(4), window.start + Duration::from_secs(7));
    let target = Arc::new(Scripted { latency: Duration::from_millis(2), stall: Some(stall) });
    let timeout = Duration::from_millis(500);
    let t = drive_with(target, open(100.0, 64, window), window, timeout, &Live::new(1, true, false)).await;
    let rec = &t.recorders[0];
    let timeouts = rec.errors.get(&ErrorKind::Timeout).copied().unwrap_or(0);
    assert!((245..=255).contains(&timeouts), "{timeouts} timeouts: ~2.5 s of 100/s");
    assert_eq!(rec.count, t.sent);
    assert_eq!(rec.latency.len(), rec.count, "every call is in the histogram");
    let all = rec.latency.summary();
    assert!(all.p99 >= 499_000 && all.p50 < 10_000, "{all:?}");
    // The successes alone: none at the timeout (the slowest, answered as the stall ended).
    let ok = rec.latency_ok.summary();
    assert_eq!(rec.latency_ok.len(), rec.count - timeouts);
    assert!(ok.p50 < 10_000 && ok.max < 500_000, "{ok:?}");
}

#[tokio::test(start_paused = true)]
async fn requests_that_never_get_a_slot_are_dropped() {
    let window = Window::new(Duration::ZERO, Duration::from_secs(1));
    let t = drive(scripted(50), open(100.0, 1, window), window).await;
    assert_eq!(t.sent + t.dropped, 100);
    assert!(t.dropped >= 75, "one slot at 50 ms serves 20/s of 100/s: {} dropped", t.dropped);
}

#[tokio::test(start_paused = true)]
async fn closed_model_keeps_concurrency_in_flight() {
    let window = Window::new(Duration::from_millis(500), Duration::from_secs(1));
    let live = Live::new(1, false, false);
    let vus = Profile::constant(2.0, window.end - window.start);
    let t = drive_with(scripted(10), Model::Closed { vus }, window, TIMEOUT, &live).await;
    assert_eq!(t.sent, 200, "2 workers × 100 calls of 10 ms");
    assert!(t.recorders[0].latency.summary().p99.abs_diff(10_000) <= 10);
    assert!(t.send_lag.is_none() && t.recorders[0].uncorrected.is_none());
    // The live interval saw every measured call until someone took it.
    let interval = live.take_interval();
    assert_eq!(interval.calls, 200);
    assert_eq!(interval.latency.len(), 200);
    assert_eq!(live.take_interval().calls, 0);
}

#[tokio::test(start_paused = true)]
async fn live_detail_splits_the_interval_by_operation_with_the_send_lag() {
    let window = Window::new(Duration::ZERO, Duration::from_secs(1));
    let live = Live::new(1, true, true);
    let watcher = live.clone();
    let midway = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        watcher.take_interval()
    });
    let t = drive_with(scripted(5), open(100.0, 8, window), window, TIMEOUT, &live).await;
    let mut interval = midway.await.unwrap();
    // A call every 10 ms, 5 ms each: the last stretch before the look had one in flight.
    assert_eq!(interval.in_flight, 1);
    interval.merge(&live.take_interval());
    assert_eq!(interval.calls, t.sent);
    assert_eq!(interval.operations.len(), 1);
    assert_eq!(interval.operations[0].calls, t.recorders[0].count);
    assert_eq!(interval.operations[0].latency.len(), t.sent);
    assert!(interval.operations[0].errors.is_empty());
    assert_eq!(interval.send_lag.as_ref().map(|h| h.len()), Some(t.sent));
}

#[tokio::test(start_paused = true)]
async fn a_rate_ramp_sends_as_its_integral() {
    // 0 → 200/s over 2 s: 200 sends, half of them in the last ~0.6 s.
    let window = Window::new(Duration::ZERO, Duration::from_secs(2));
    let rate = Profile { start: 0.0, stages: vec![(Duration::from_secs(2), 200.0)] };
    let t = drive(scripted(1), Model::Open { rate, max_in_flight: 8 }, window).await;
    assert_eq!((t.sent, t.late, t.dropped), (200, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn ramping_vus_add_workers_as_the_profile_rises() {
    // 1 → 4 VUs over 3 s, 10 ms per call: the first second runs ~1-2 workers, the last ~4.
    let window = Window::new(Duration::ZERO, Duration::from_secs(3));
    let vus = Profile { start: 1.0, stages: vec![(Duration::from_secs(3), 4.0)] };
    let live = Live::new(1, false, false);
    let watcher = live.clone();
    let sampler = tokio::spawn(async move {
        let mut per_second = Vec::new();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            per_second.push(watcher.take_interval().calls);
        }
        per_second
    });
    let t = drive_with(scripted(10), Model::Closed { vus }, window, TIMEOUT, &live).await;
    let per_second = sampler.await.unwrap();
    assert!(per_second[0] < per_second[1] && per_second[1] < per_second[2], "{per_second:?}");
    assert!((100..=200).contains(&per_second[0]) && (300..=400).contains(&per_second[2]), "{per_second:?}");
    // What the last look missed (the calls in flight when the window closed, and at most one
    // flush period) is in the tally and the live view.
    let seen: u64 = per_second.iter().sum::<u64>() + live.take_interval().calls;
    assert_eq!(t.sent, seen);
}

#[tokio::test(start_paused = true)]
async fn iterations_make_exactly_that_many_calls() {
    let window = Window::new(Duration::ZERO, Duration::ZERO);
    let t = drive(scripted(5), Model::Iterations { total: 50, concurrency: 3 }, window).await;
    assert_eq!(t.sent, 50);
    assert_eq!(t.recorders[0].count, 50);
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_every_model() {
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stopper.cancel();
    });
    let window = Window::new(Duration::ZERO, Duration::from_secs(60));
    let mut link = TargetLink::new(scripted(1));
    let pacer = Pacer::new(open(100.0, 2, window), window);
    let live = Live::new(1, true, false);
    let schedule = Schedule { pacer, timeout: TIMEOUT, measure_start: window.start };
    let t = run(&mut link, &mix(), schedule, &cancel, &mut TokioSleeper, &live).await;
    assert!(t.sent <= 31, "stopped after ~0.3 s: {}", t.sent);
}
