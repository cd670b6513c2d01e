//! Progress on stderr while a run measures: on a terminal an indicatif bar per repetition
//! (elapsed of planned, last second's rate, p99 and errors); elsewhere (CI logs, pipes) a plain
//! line every few seconds, since bars redrawn in a log are noise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::load::Progress;
use crate::report;
use crate::results::{LooksEnded, SeriesPoint};

/// Seconds between plain progress lines.
const PLAIN_EVERY_S: u64 = 5;

pub struct ProgressView {
    terminal: bool,
    bar: Option<ProgressBar>,
}

impl ProgressView {
    pub fn new() -> ProgressView {
        ProgressView { terminal: std::io::stderr().is_terminal(), bar: None }
    }

    /// Shows what the engine reports while measuring: builds and ticks (a finished repetition
    /// is the caller's to word).
    pub fn engine(&mut self, event: &Progress<'_>) {
        match event {
            Progress::Building(cmd) => self.line(&format!("building: {cmd}")),
            Progress::Tick { scenario, index, of, elapsed, planned, point } => {
                self.tick(scenario, (*index, *of), *elapsed, *planned, point)
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
                    LooksEnded::Budget => "another look would not fit in compare.extend.budget",
                }
            )),
            Progress::RepetitionFinished { .. } => {}
        }
    }

    /// A line that stays (above the bar, when there is one).
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// About once a second during a repetition's measured window.
    pub fn tick(
        &mut self,
        scenario: &str,
        (index, of): (u32, u32),
        elapsed: Duration,
        planned: Option<Duration>,
        point: &SeriesPoint,
    ) {
        if !self.terminal {
            if elapsed.as_secs() > 0 && elapsed.as_secs().is_multiple_of(PLAIN_EVERY_S) {
                eprintln!("{}", report::tick_line(scenario, index, of, elapsed, planned, point));
            }
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = match planned {
                Some(p) => ProgressBar::new(p.as_secs().max(1)),
                None => ProgressBar::new_spinner(),
            };
            let template = "{prefix} [{bar:30}] {pos}/{len}s {msg}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(format!("[{scenario}] {index}/{of}"));
            bar
        });
        bar.set_position(elapsed.as_secs());
        bar.set_message(report::tick_message(point));
    }

    /// A repetition ended: its bar gives way to its summary line.
    pub fn finished(&mut self, line: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!("{line}");
    }
}
