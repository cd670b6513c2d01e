//! Progress on stderr while a run measures. On a terminal, one indicatif bar per scenario
//! across its repetitions, from the first warm-up on: time through the scenario's planned
//! repetitions, calls/s, errors, and the p99 of every measured call so far (histograms merged
//! over its repetitions, never the last second's). Elsewhere (CI logs, pipes), a plain line
//! every few seconds and one at the end of every repetition, since bars redrawn in a log are
//! noise and a short run must still log.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::load::{Interval, Progress};
use crate::report;
use crate::results::LooksEnded;

/// Seconds between plain progress lines.
const PLAIN_EVERY_S: u64 = 5;

pub struct ProgressView {
    terminal: bool,
    bars: MultiProgress,
    scenarios: HashMap<String, ScenarioBar>,
}

/// A scenario's bar and what its finished repetitions measured.
struct ScenarioBar {
    bar: ProgressBar,
    /// Measured calls of the finished repetitions, merged.
    done: Interval,
    /// Measured seconds and bar positions of the finished repetitions.
    done_measured_s: f64,
    done_position: u64,
    /// The repetition being measured, and what it has measured so far.
    current: u32,
    current_so_far: Interval,
    current_measured_s: f64,
    current_planned: u64,
}

impl ScenarioBar {
    /// The current repetition has ended: its calls join the finished ones.
    fn fold(&mut self) {
        let so_far = std::mem::take(&mut self.current_so_far);
        self.done.merge(&so_far);
        self.done_measured_s += self.current_measured_s;
        self.done_position += self.current_planned;
        self.current_measured_s = 0.0;
    }
}

impl ProgressView {
    pub fn new() -> ProgressView {
        let terminal = std::io::stderr().is_terminal();
        let bars = MultiProgress::with_draw_target(if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        ProgressView { terminal, bars, scenarios: HashMap::new() }
    }

    /// Shows what the engine reports while measuring: builds and ticks (a finished repetition
    /// is the caller's to word).
    pub fn engine(&mut self, event: &Progress<'_>) {
        match event {
            Progress::Building(cmd) => self.line(&format!("building: {cmd}")),
            Progress::Tick { scenario, index, of, elapsed, warmup, planned, point, so_far, .. } => {
                if !self.terminal {
                    let secs = elapsed.as_secs();
                    if secs > 0 && secs.is_multiple_of(PLAIN_EVERY_S) {
                        eprintln!("{}", report::tick_line(scenario, *index, *of, *elapsed, *planned, *point));
                    }
                    return;
                }
                let measured = elapsed.saturating_sub(*warmup);
                self.tick(scenario, (*index, *of), (*elapsed, measured), *planned, so_far)
            }
            Progress::Extending { look, repetitions, more, expected } => self.line(&format!(
                "look {look} at {repetitions} repetitions a side: inconclusive metrics, no regression; {more} more a side (about {})",
                humantime::format_duration(Duration::from_secs(expected.as_secs().max(1)))
            )),
            Progress::LooksEnded { look, repetitions, why } => self.line(&format!(
                "look {look} at {repetitions} repetitions a side: {}",
                match why {
                    LooksEnded::Decided => "every metric decided",
                    LooksEnded::MaxLooks => "the last look allowed (compare.extend.max_looks)",
                    LooksEnded::Budget => "another look would not fit in the budget (compare.budget, or compare.extend.budget)",
                }
            )),
            Progress::Discovered { scenario, discovery } => {
                // Tool names are the server's: shown inert.
                let names: Vec<String> =
                    discovery.kept.iter().map(|t| format!("`{}`", report::inert::line(t.name()))).collect();
                self.line(&format!(
                    "[{scenario}] no mix: measuring the {} tool(s) the server lists: {}",
                    names.len(),
                    names.join(", ")
                ));
                for l in &discovery.left_out {
                    self.line(&format!(
                        "[{scenario}] left out `{}`: {} (name it in --tool or a mix to measure it)",
                        report::inert::line(l.tool.name()),
                        l.why
                    ));
                }
            }
            Progress::Aligned { scenario, index, wait, late } => {
                if !late.is_zero() {
                    self.line(&format!(
                        "warning: [{scenario}] repetition {index} starts {} ms after the common start's timetable: its server and session took longer than the gap (raise --slot-gap)",
                        late.as_millis()
                    ));
                } else if *wait >= Duration::from_secs(1) {
                    self.line(&format!(
                        "[{scenario}] repetition {index}: ready; the measured window starts on the common timetable in {:.1} s",
                        wait.as_secs_f64()
                    ));
                }
            }
            Progress::RepetitionFinished { .. } => {}
        }
    }

    /// A line that stays (above the bars, when there are any).
    pub fn line(&self, text: &str) {
        if self.terminal {
            let _ = self.bars.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    /// About once a second during a repetition (on a terminal).
    fn tick(
        &mut self,
        scenario: &str,
        (index, of): (u32, u32),
        (elapsed, measured): (Duration, Duration),
        planned: Option<Duration>,
        so_far: &Interval,
    ) {
        let planned_s = planned.map_or(0, |p| p.as_secs().max(1));
        let bars = &self.bars;
        let s = self.scenarios.entry(scenario.to_string()).or_insert_with(|| {
            let bar = match planned {
                Some(_) => ProgressBar::new(planned_s * u64::from(of)),
                None => ProgressBar::new_spinner(),
            };
            let template = "{prefix} [{bar:30}] {elapsed_precise} {msg}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            ScenarioBar {
                bar: bars.add(bar),
                done: Interval::default(),
                done_measured_s: 0.0,
                done_position: 0,
                current: index,
                current_so_far: Interval::default(),
                current_measured_s: 0.0,
                current_planned: planned_s,
            }
        });
        if s.current != index {
            s.fold();
            s.current = index;
        }
        s.current_planned = planned_s;
        s.current_so_far.calls = so_far.calls;
        s.current_so_far.errors = so_far.errors;
        s.current_so_far.latency = so_far.latency.clone();
        s.current_measured_s = measured.as_secs_f64();
        s.bar.set_length(planned_s.max(1) * u64::from(of));
        s.bar.set_prefix(format!("[{scenario}] {index}/{of}"));
        s.bar.set_position(s.done_position + elapsed.as_secs().min(planned_s));
        let mut latency = s.done.latency.clone();
        latency.merge(&s.current_so_far.latency);
        let calls = s.done.calls + so_far.calls;
        let seconds = s.done_measured_s + s.current_measured_s;
        s.bar.set_message(if calls == 0 && measured.is_zero() {
            "warming up".to_string()
        } else {
            report::so_far_message(calls, s.done.errors + so_far.errors, seconds, &latency)
        });
    }

    /// A repetition ended: its summary line goes above the bars.
    pub fn finished(&mut self, line: &str) {
        self.line(line);
    }
}

impl Drop for ProgressView {
    fn drop(&mut self) {
        for s in self.scenarios.values() {
            s.bar.finish_and_clear();
        }
        let _ = self.bars.clear();
    }
}
