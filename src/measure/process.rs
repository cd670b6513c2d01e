//! Sampling a server's whole process tree from /proc: RSS, CPU time, threads, open fds.
//!
//! The tree is the server's process group (which is what the run ends) plus any descendant by
//! parent id, so that `npx` → `node` or a shell → server are measured as one server. Sampling
//! runs on its own thread every [`SAMPLE_INTERVAL`], off the load's async workers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::runtime::process::{ProcStat as Stat, Units, parse_stat, units};

/// Between 100 and 250 ms as the design asks: fine enough for a 1 s window, cheap enough to
/// leave the machine to the server.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(200);

/// The most readings a sampler keeps (72 KiB). Past it, neighbours are merged and the interval
/// doubles (a soak keeps 512 to 1,023 readings however long it runs: more than a series has
/// points), so the generator's memory does not grow with the run: a list that grew instead
/// made the allocator take a 2 MiB step at 1,024 readings and another at 2,048 (`smaps` on a
/// 600 s run).
const MAX_SAMPLES: usize = 1024;

/// One reading of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    pub rss_bytes: u64,
    /// User + system CPU of the live processes, plus what the root has reaped from children.
    pub cpu_seconds: f64,
    pub threads: u64,
    pub open_fds: u64,
    pub processes: u64,
    /// The sampler thread's own CPU time when this reading was taken (it is the generator's
    /// cost, not the server's, and is reported apart from the load loop's).
    pub sampler_cpu_seconds: f64,
}

/// A process tree's resource use over a measured window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourceSummary {
    pub samples: u64,
    pub rss_peak_bytes: u64,
    pub rss_final_bytes: u64,
    pub rss_mean_bytes: f64,
    /// Least-squares slope of RSS over the window; a steady positive slope in a soak is a leak.
    pub rss_slope_bytes_per_s: f64,
    /// CPU time spent during the window.
    pub cpu_seconds: f64,
    pub threads_peak: u64,
    pub open_fds_peak: u64,
    #[serde(default)]
    pub open_fds_final: u64,
    /// Least-squares slope of open fds over the window: a steady rise is a descriptor leak.
    #[serde(default)]
    pub open_fds_slope_per_s: f64,
    pub processes_peak: u64,
    /// Server CPU per call measured in the window, µs (filled by the load engine, which knows
    /// the calls).
    pub cpu_us_per_call: f64,
}

/// Most processes of a server's tree that one reading looks at.
const MAX_TREE: usize = 4096;

/// The processes of the tree rooted at `root`: the root and its descendants, found through
/// each thread's `children` file, so a reading touches only the tree, not every process on the
/// machine. Without that file (a kernel built without it), every process is scanned, and the
/// tree is the root's process group plus its descendants by parent id.
fn tree_pids(root: i32) -> Option<Vec<i32>> {
    let mut pids = vec![root];
    // A pid reused while the tree is walked must not be walked twice; and a server that forks
    // without end costs the sampler a bounded amount of work.
    let mut seen = HashSet::from([root]);
    let mut i = 0;
    while i < pids.len() && pids.len() < MAX_TREE {
        let tasks = match std::fs::read_dir(format!("/proc/{}/task", pids[i])) {
            Ok(tasks) => tasks,
            Err(_) if i == 0 => return None,
            Err(_) => {
                i += 1;
                continue;
            }
        };
        for task in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
                if i == 0 {
                    return None;
                }
                continue;
            };
            let new = children.split_whitespace().filter_map(|p| p.parse::<i32>().ok());
            pids.extend(new.filter(|p| seen.insert(*p)));
        }
        i += 1;
    }
    pids.truncate(MAX_TREE);
    pids.sort_unstable();
    Some(pids)
}

/// The tree by a scan of all of /proc: the root's group, then descendants by parent id.
fn scanned_tree(root: i32) -> Vec<(i32, Stat)> {
    let mut stats = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if let Some(st) = read_stat(pid) {
            stats.insert(pid, st);
        }
    }
    let mut tree: HashSet<i32> = stats.iter().filter(|(_, s)| s.pgid == root).map(|(p, _)| *p).collect();
    tree.insert(root);
    loop {
        let more: Vec<i32> =
            stats.iter().filter(|(p, s)| !tree.contains(p) && tree.contains(&s.ppid)).map(|(p, _)| *p).collect();
        if more.is_empty() {
            break;
        }
        tree.extend(more);
    }
    tree.into_iter().filter_map(|p| Some((p, stats.remove(&p)?))).collect()
}

fn read_stat(pid: i32) -> Option<Stat> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().as_deref().and_then(parse_stat)
}

/// Reads the tree rooted at `root` once.
fn read_tree(root: i32, units: &Units) -> Option<Sample> {
    let stats: Vec<(i32, Stat)> = match tree_pids(root) {
        Some(pids) => pids.into_iter().filter_map(|p| Some((p, read_stat(p)?))).collect(),
        None => scanned_tree(root),
    };
    let root_stat = &stats.iter().find(|(p, _)| *p == root)?.1;
    let mut sample = Sample { cpu_seconds: root_stat.child_ticks as f64 / units.ticks_per_s, ..Default::default() };
    for (pid, st) in &stats {
        sample.rss_bytes += st.rss_pages * units.page_bytes;
        sample.cpu_seconds += st.ticks as f64 / units.ticks_per_s;
        sample.threads += st.threads;
        sample.open_fds += std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0);
        sample.processes += 1;
    }
    Some(sample)
}

/// The calling thread's own CPU time, seconds.
fn thread_cpu_seconds() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
}

/// Samples a process tree on its own thread until stopped.
pub struct TreeSampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<(Instant, Sample)>>>,
    /// The latest reading, for a live view.
    latest: Arc<std::sync::Mutex<Option<Sample>>>,
}

impl TreeSampler {
    /// Starts sampling the tree of `root` (a process group leader).
    pub fn start(root: u32) -> TreeSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let latest = Arc::new(std::sync::Mutex::new(None));
        let shared = latest.clone();
        let thread = std::thread::Builder::new()
            .name("mcp-perfcheck-sampler".into())
            .spawn(move || {
                let units = units();
                let mut readings = Readings::new();
                while !flag.load(Ordering::Relaxed) {
                    if let Some(mut s) = read_tree(root as i32, &units) {
                        s.sampler_cpu_seconds = thread_cpu_seconds();
                        readings.push(Instant::now(), s);
                        if let Ok(mut latest) = shared.lock() {
                            *latest = Some(s);
                        }
                    }
                    std::thread::park_timeout(readings.interval);
                }
                readings.series
            })
            .ok();
        TreeSampler { stop, thread, latest }
    }

    /// The latest reading so far.
    pub fn latest(&self) -> Option<Sample> {
        self.latest.lock().ok().and_then(|l| *l)
    }

    /// Stops, and summarises the samples inside `[from, to]` (`None` when nothing could be
    /// read, as off Linux). Also returns every reading, for time series.
    pub fn finish(mut self, from: Instant, to: Instant) -> (Option<ResourceSummary>, Vec<(Instant, Sample)>) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else { return (None, Vec::new()) };
        thread.thread().unpark();
        let series = thread.join().unwrap_or_default();
        (summarise(&series, from, to), series)
    }
}

impl Drop for TreeSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

/// A sampler's readings in bounded memory: [`MAX_SAMPLES`] at most, thinned by half when full.
struct Readings {
    series: Vec<(Instant, Sample)>,
    /// The interval that keeps the readings evenly spaced after thinning.
    interval: Duration,
}

impl Readings {
    fn new() -> Readings {
        Readings { series: Vec::with_capacity(MAX_SAMPLES), interval: SAMPLE_INTERVAL }
    }

    /// Keeps a reading; the newest always stays whole, so the next one is an interval after it.
    fn push(&mut self, at: Instant, sample: Sample) {
        self.series.push((at, sample));
        if self.series.len() == MAX_SAMPLES {
            self.thin();
            self.interval *= 2;
        }
    }

    /// Merges each pair of neighbours into one reading at the later instant, with the later
    /// cumulative CPU and the larger RSS, threads, fds and processes: peaks are never lost (a
    /// soak's mean RSS leans a little towards them). The window's CPU then starts from a
    /// reading up to one interval before it, as before thinning, relative to a longer run.
    fn thin(&mut self) {
        let merged: Vec<(Instant, Sample)> = self
            .series
            .chunks(2)
            .map(|pair| {
                let (at, later) = pair[pair.len() - 1];
                let earlier = pair[0].1;
                let sample = Sample {
                    rss_bytes: later.rss_bytes.max(earlier.rss_bytes),
                    threads: later.threads.max(earlier.threads),
                    open_fds: later.open_fds.max(earlier.open_fds),
                    processes: later.processes.max(earlier.processes),
                    ..later
                };
                (at, sample)
            })
            .collect();
        self.series.clear();
        self.series.extend(merged);
    }
}

/// Summarises samples within `[from, to]`; CPU is the difference between the last sample at or
/// before `from` (or the first after it) and the last sample in the window.
pub fn summarise(series: &[(Instant, Sample)], from: Instant, to: Instant) -> Option<ResourceSummary> {
    let inside: Vec<&(Instant, Sample)> = series.iter().filter(|(t, _)| *t >= from && *t <= to).collect();
    let last = inside.last()?;
    let baseline = series.iter().rev().find(|(t, _)| *t <= from).or(inside.first().copied())?;
    let xs: Vec<f64> = inside.iter().map(|(t, _)| t.duration_since(from).as_secs_f64()).collect();
    let rss: Vec<f64> = inside.iter().map(|(_, s)| s.rss_bytes as f64).collect();
    let fds: Vec<f64> = inside.iter().map(|(_, s)| s.open_fds as f64).collect();
    let (rss_mean, rss_slope) = mean_and_slope(&xs, &rss);
    Some(ResourceSummary {
        samples: inside.len() as u64,
        rss_peak_bytes: inside.iter().map(|(_, s)| s.rss_bytes).max().unwrap_or(0),
        rss_final_bytes: last.1.rss_bytes,
        rss_mean_bytes: rss_mean,
        rss_slope_bytes_per_s: rss_slope,
        cpu_seconds: (last.1.cpu_seconds - baseline.1.cpu_seconds).max(0.0),
        threads_peak: inside.iter().map(|(_, s)| s.threads).max().unwrap_or(0),
        open_fds_peak: inside.iter().map(|(_, s)| s.open_fds).max().unwrap_or(0),
        open_fds_final: last.1.open_fds,
        open_fds_slope_per_s: mean_and_slope(&xs, &fds).1,
        processes_peak: inside.iter().map(|(_, s)| s.processes).max().unwrap_or(0),
        cpu_us_per_call: 0.0,
    })
}

/// The sampler's own CPU over `[from, to]`, measured like the server's.
pub fn sampler_cpu(series: &[(Instant, Sample)], from: Instant, to: Instant) -> f64 {
    let last = series.iter().rev().find(|(t, _)| *t <= to);
    let first = series.iter().rev().find(|(t, _)| *t <= from).or(series.first());
    match (first, last) {
        (Some(a), Some(b)) => (b.1.sampler_cpu_seconds - a.1.sampler_cpu_seconds).max(0.0),
        _ => 0.0,
    }
}

/// The mean of `ys` and the least-squares slope of `ys` over `xs` (0 with fewer than two xs).
fn mean_and_slope(xs: &[f64], ys: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    (my, if sxx > 0.0 { sxy / sxx } else { 0.0 })
}

/// This process's own CPU time (user + system, to the nanosecond: /proc's clock ticks are
/// 10 ms, too coarse for a per-call cost of a few µs) and peak RSS, for the generator's cost.
pub fn own_usage() -> (f64, u64) {
    let cpu = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9);
    let hwm_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    (cpu, hwm_kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_the_window_and_fits_the_slope() {
        let t0 = Instant::now();
        let at = |ms: u64, rss: u64, cpu: f64| {
            (
                t0 + Duration::from_millis(ms),
                Sample {
                    rss_bytes: rss,
                    cpu_seconds: cpu,
                    threads: 3,
                    open_fds: 5 + ms / 500,
                    processes: 2,
                    sampler_cpu_seconds: ms as f64 * 1e-4,
                },
            )
        };
        // Warm-up sample, then RSS growing 1 MB/s and fds 2/s through the window, then one after it.
        let series = [
            at(0, 50, 0.0),
            at(1000, 1_000_000, 1.0),
            at(2000, 2_000_000, 1.5),
            at(3000, 3_000_000, 2.5),
            at(4000, 9, 9.0),
        ];
        let s = summarise(&series, t0 + Duration::from_millis(1000), t0 + Duration::from_millis(3000)).unwrap();
        assert_eq!(s.samples, 3);
        assert_eq!((s.rss_peak_bytes, s.rss_final_bytes), (3_000_000, 3_000_000));
        assert!((s.rss_slope_bytes_per_s - 1_000_000.0).abs() < 1e-6);
        assert!((s.cpu_seconds - 1.5).abs() < 1e-9, "{}", s.cpu_seconds);
        assert_eq!((s.threads_peak, s.open_fds_peak, s.open_fds_final, s.processes_peak), (3, 11, 11, 2));
        assert!((s.open_fds_slope_per_s - 2.0).abs() < 1e-9, "{}", s.open_fds_slope_per_s);
        assert!(summarise(&series, t0 + Duration::from_secs(10), t0 + Duration::from_secs(11)).is_none());
        let own = sampler_cpu(&series, t0 + Duration::from_millis(1000), t0 + Duration::from_millis(3000));
        assert!((own - 0.2).abs() < 1e-9, "{own}");
    }

    #[test]
    fn a_long_soak_keeps_bounded_evenly_spaced_readings_and_every_peak() {
        let t0 = Instant::now();
        let mut readings = Readings::new();
        let (mut at, mut n) = (t0, 0u64);
        // An hour of readings at the interval the sampler would use, with one RSS spike and
        // one fd spike between ordinary readings.
        while at < t0 + Duration::from_secs(3600) {
            let rss = if n == 2000 { 9_000_000 } else { 1_000_000 + n };
            let sample = Sample {
                rss_bytes: rss,
                cpu_seconds: n as f64,
                threads: 4,
                open_fds: if n == 77 { 500 } else { 10 },
                processes: 1,
                sampler_cpu_seconds: n as f64 * 1e-4,
            };
            readings.push(at, sample);
            at += readings.interval;
            n += 1;
        }
        let series = &readings.series;
        assert!((MAX_SAMPLES / 2..MAX_SAMPLES).contains(&series.len()), "{}", series.len());
        assert_eq!(series.capacity(), MAX_SAMPLES, "the list is never reallocated");
        assert_eq!(readings.interval, SAMPLE_INTERVAL * 32, "3,600 s needs five halvings");
        let gaps: Vec<Duration> = series.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(gaps.iter().all(|g| *g == readings.interval), "evenly spaced");
        let s = summarise(series, t0, at).unwrap();
        assert_eq!((s.rss_peak_bytes, s.open_fds_peak), (9_000_000, 500), "peaks survive thinning");
        assert_eq!(s.cpu_seconds, (n - 1) as f64 - series[0].1.cpu_seconds);
        assert_eq!(series.last().unwrap().1.cpu_seconds, (n - 1) as f64, "cumulative CPU is the latest");
    }

    #[test]
    fn samples_a_real_process_tree() {
        use std::os::unix::process::CommandExt;
        // A shell in its own group with children and a grandchild: all are counted, by the
        // walk from the root and by the scan of /proc alike.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & sh -c 'sleep 5; true' & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let sample = read_tree(child.id() as i32, &units()).unwrap();
        let walked = tree_pids(child.id() as i32).unwrap();
        let mut scanned: Vec<i32> = scanned_tree(child.id() as i32).into_iter().map(|(p, _)| p).collect();
        scanned.sort_unstable();
        let _ =
            nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        assert!(sample.processes >= 4, "{sample:?}");
        assert_eq!(walked, scanned);
        assert!(sample.rss_bytes > 0 && sample.threads >= 3 && sample.open_fds >= 3, "{sample:?}");
    }
}
