//! The workload engine: for each repetition and scenario, a fresh server process, the MCP
//! handshake, then the scenario's load model (see [`drive`]): closed, open or a fixed number
//! of iterations. The engine fills the [`Results`] and hands it to the caller after every
//! repetition, so a later failure loses nothing.

mod discover;
mod drive;
mod faults;
mod mix;
mod pace;
mod phases;
mod repetition;
mod series;
mod session;
mod timer;
mod upstreams;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::config::{LoadModel, Plan, Profile, Scenario};
use crate::measure::{Environment, git_head};
use crate::results::{
    FailureKind, Looks, LooksEnded, RepetitionResult, Results, RunFailure, SCHEMA, ScenarioResult, SeriesPoint,
    Sharding,
};

pub use discover::{Discovery, LeftOut, ListedTool};
pub use drive::{Interval, OperationInterval};
pub use mix::CompiledMix;

use repetition::{Slot, run_repetition};

/// What the engine reports while it works.
pub enum Progress<'a> {
    Building(&'a str),
    /// About once a second from the start of a repetition's warm-up.
    Tick {
        /// The scenario (with its side in an A/B run).
        scenario: &'a str,
        index: u32,
        of: u32,
        /// Since the warm-up began.
        elapsed: Duration,
        warmup: Duration,
        /// Warm-up and measured window (`None`: iterations).
        planned: Option<Duration>,
        /// The last second of the measured window (`None` during warm-up).
        point: Option<&'a SeriesPoint>,
        /// Every measured call of this repetition so far (by operation too, with
        /// [`Plan::live_detail`]).
        so_far: &'a Interval,
        /// The mix's operation names, in the order of `so_far.operations`.
        operations: &'a [String],
        /// Open model: the rate the schedule asks for now, per second.
        target_rate: Option<f64>,
        /// The server process tree's latest reading.
        server: Option<crate::measure::Sample>,
    },
    /// A common start (`run --start-at`): the repetition's server is up and its session open;
    /// it waits `wait` for its window to begin on the timetable, or its measured window begins
    /// `late` after the planned time (the set-up took longer than the gap allowed).
    Aligned {
        scenario: &'a str,
        index: u32,
        wait: Duration,
        late: Duration,
    },
    /// A scenario with no mix was given the tools the server lists: those measured, and those
    /// left out because their probe call failed or took too long.
    Discovered {
        scenario: &'a str,
        discovery: &'a Discovery,
    },
    /// A repetition ended; `results` holds everything measured so far.
    RepetitionFinished {
        scenario: &'a str,
        repetition: &'a RepetitionResult,
        results: &'a Results,
    },
    /// A look of an extended A/B left something undecided: `more` repetitions per side follow,
    /// expected to take about `expected`.
    Extending {
        look: usize,
        repetitions: u32,
        more: u32,
        expected: Duration,
    },
    /// The looks ended (see [`LooksEnded`]) at `repetitions` per side.
    LooksEnded {
        look: usize,
        repetitions: u32,
        why: LooksEnded,
    },
}

/// Builds (if configured), then measures every scenario `repetitions` times. Never fails: a
/// failure is recorded in `Results::failure` next to everything measured before it. `progress`
/// may stop the run after a repetition by returning `Break(reason)` (an abort-on-fail threshold).
pub async fn execute(
    plan: &Plan,
    extension: Option<Extension<'_>>,
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> Results {
    execute_sides(plan, None, extension, cancel, progress).await
}

/// The base of a same-runner A/B: its plan (the same workload, the server from another
/// checkout) and the commit it was built from.
pub struct BaseSide<'a> {
    pub plan: &'a Plan,
    pub git_sha: Option<String>,
    /// Seeds the order within each pair of repetitions.
    pub seed: u64,
}

/// More looks at a run after its first (`workload.repetitions: auto`, or `compare.extend`).
/// After each look `plan` is shown the results so far (with [`Results::looks`] up to date, for
/// an A/B) and answers, per scenario, how many repetitions a side it wants in all (`None`: that
/// scenario is settled). The engine runs them, growing a scenario by at most 1.5 times what it
/// has per look (half as many again, or two, where it is not settled yet wants no more than it
/// has), up to `max_looks` looks in all, `max_repetitions` a
/// side, and while the look is expected to end within the budget.
pub struct Extension<'a> {
    pub max_looks: u32,
    pub max_repetitions: MostRepetitions,
    pub budget: Budget,
    pub plan: &'a mut dyn FnMut(&Results) -> Vec<Option<u32>>,
}

/// The most repetitions a side the looks may reach (α is spent over it, so it must not follow
/// the data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MostRepetitions {
    Exactly(u32),
    /// As many as the budget allows at the pilot's pace, fixed once the pilot is measured, and
    /// never more than the ceiling.
    WithinBudget {
        ceiling: u32,
    },
}

/// The wall time more looks may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// All repetitions of the run, both sides, from its first.
    Total(Duration),
    /// The looks after the first, from its end.
    AfterFirstLook(Duration),
}

/// A same-runner A/B: both sides are built, then each repetition of each scenario runs once
/// per side, back to back, in an order drawn at random for each pair, each on a fresh server
/// process, so that drift over the run falls on both sides alike. The head's results come back
/// with the base's in `base_run`.
pub async fn execute_ab(
    head: &Plan,
    base: BaseSide<'_>,
    extension: Option<Extension<'_>>,
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> Results {
    execute_sides(head, Some(base), extension, cancel, progress).await
}

/// Which run a repetition belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SideId {
    Head,
    Base,
}

fn empty_results(plan: &Plan, git_sha: Option<String>) -> Results {
    Results {
        schema: SCHEMA.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        timestamp: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        git_sha,
        config_source: plan.source.clone(),
        environment: Environment::probe(),
        server: None,
        scenarios: plan.workload.scenarios.iter().map(scenario_result).collect(),
        thresholds: Vec::new(),
        failure: None,
        base_run: None,
        pairing: None,
        looks: None,
        sharding: plan.shard.map(|s| Sharding {
            index: Some(s.index),
            count: s.count,
            config_hash: plan.config_hash.clone(),
            start_at: plan.start.map(|c| humantime::format_rfc3339_millis(c.at).to_string()),
            skew_ms: None,
        }),
    }
}

/// Where each measured window falls on a common start's timetable: the first at the start,
/// each later one (in the order the run takes them) after the previous one's planned end, the
/// gap and its own warm-up. Every shard computes the same times from the same config.
struct Timetable {
    start: crate::config::CommonStart,
    previous_end: Option<SystemTime>,
}

impl Timetable {
    /// The planned start of the next measured window, for a scenario of `warmup` and
    /// `duration` (iterations have none: the next window is planned right after their start).
    fn next(&mut self, warmup: Duration, duration: Duration) -> SystemTime {
        let at = match self.previous_end {
            None => self.start.at,
            Some(end) => end + self.start.gap + warmup,
        };
        self.previous_end = Some(at + duration);
        at
    }
}

fn side_mut(results: &mut Results, side: SideId) -> &mut Results {
    match side {
        SideId::Head => results,
        SideId::Base => results.base_run.as_deref_mut().expect("an A/B run has a base"),
    }
}

fn side_ref(results: &Results, side: SideId) -> &Results {
    match side {
        SideId::Head => results,
        SideId::Base => results.base_run.as_deref().expect("an A/B run has a base"),
    }
}

/// A scenario without a mix gets one from the server's tool list, at its first repetition.
fn initial_mixes(plan: &Plan) -> Vec<Option<Arc<CompiledMix>>> {
    plan.workload
        .scenarios
        .iter()
        .map(|s| (!s.mix.is_empty()).then(|| Arc::new(CompiledMix::new(&s.mix).sharded(plan.shard))))
        .collect()
}

async fn execute_sides(
    head: &Plan,
    base: Option<BaseSide<'_>>,
    mut extension: Option<Extension<'_>>,
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> Results {
    let mut results = empty_results(head, git_head());
    let mut sides = vec![(SideId::Head, head)];
    let mut order_seed = 0;
    if let Some(b) = &base {
        let mut base_results = empty_results(b.plan, b.git_sha.clone());
        let pairing = format!("{}-{:016x}", results.timestamp, b.seed);
        (results.pairing, base_results.pairing) = (Some(pairing.clone()), Some(pairing));
        results.base_run = Some(Box::new(base_results));
        sides.push((SideId::Base, b.plan));
        order_seed = b.seed;
    }

    for &(side, plan) in sides.iter().rev() {
        if let Some(build) = &plan.server.build {
            let _ = progress(Progress::Building(build));
            if let Err(failure) = run_build(build, plan, cancel).await {
                side_mut(&mut results, side).failure = Some(failure);
                return results;
            }
        }
    }

    let mut mixes: Vec<Vec<Option<Arc<CompiledMix>>>> = sides.iter().map(|(_, plan)| initial_mixes(plan)).collect();
    let scenarios = head.workload.scenarios.len();
    let first = head.workload.repetitions.first();
    let record_looks = base.is_some() && extension.is_some();
    if record_looks {
        results.looks = Some(Looks { repetitions: Vec::new(), max_repetitions: first, ended: None });
    }
    let mut targets = vec![first; scenarios];
    let mut looks = LookState { spent: vec![(Duration::ZERO, 0); scenarios], ..LookState::default() };
    let mut index = 1;
    let mut timetable = head.start.map(|start| Timetable { start, previous_end: None });
    let measuring = std::time::Instant::now();
    loop {
        // Repetition-major order: drift over the run touches every scenario alike.
        while index <= targets.iter().copied().max().unwrap_or(0) {
            for (si, scenario) in head.workload.scenarios.iter().enumerate() {
                if index > targets[si] {
                    continue;
                }
                let started = std::time::Instant::now();
                let mut order: Vec<usize> = (0..sides.len()).collect();
                let pair = u64::from(index) * scenarios as u64 + si as u64;
                if sides.len() == 2 && mix::splitmix64(order_seed.wrapping_add(pair)) & 1 == 1 {
                    order.reverse();
                }
                for k in order {
                    let (side, plan) = sides[k];
                    let label = match side {
                        SideId::Head if sides.len() == 2 => format!("{} (head)", scenario.name),
                        SideId::Head => scenario.name.clone(),
                        SideId::Base => format!("{} (base)", scenario.name),
                    };
                    let model = scenario.model();
                    let start =
                        timetable.as_mut().map(|t| t.next(model.warmup(), model.duration().unwrap_or_default()));
                    let slot = Slot { index, of: targets[si], start };
                    let outcome =
                        run_repetition(plan, scenario, &label, &mut mixes[k][si], slot, cancel, progress).await;
                    let target = side_mut(&mut results, side);
                    if target.server.is_none() {
                        target.server = outcome.server;
                    }
                    let mut abort = None;
                    if let Some(rep) = outcome.repetition {
                        target.scenarios[si].repetitions.push(rep);
                        let rep = side_ref(&results, side).scenarios[si].repetitions.last().expect("just pushed");
                        let event =
                            Progress::RepetitionFinished { scenario: &label, repetition: rep, results: &results };
                        if let ControlFlow::Break(reason) = progress(event) {
                            abort = Some(RunFailure {
                                kind: FailureKind::Aborted,
                                message: reason,
                                stderr_tail: Vec::new(),
                            });
                        }
                    }
                    if let Some(failure) = outcome.failure.or(abort) {
                        side_mut(&mut results, side).failure = Some(failure);
                        return results;
                    }
                }
                looks.spent[si] = (looks.spent[si].0 + started.elapsed(), looks.spent[si].1 + 1);
            }
            index += 1;
        }
        let Some(ext) = extension.as_mut() else { break };
        let reps = targets.iter().copied().max().unwrap_or(0);
        let planned = looks.next(ext, &targets, measuring.elapsed(), &mut results);
        let look = looks.taken as usize;
        match planned {
            Err(why) => {
                if let Some(record) = results.looks.as_mut() {
                    record.ended = Some(why);
                }
                let _ = progress(Progress::LooksEnded { look, repetitions: reps, why });
                break;
            }
            Ok((more, expected)) => {
                let most = more.iter().copied().max().unwrap_or(0);
                let _ = progress(Progress::Extending { look, repetitions: reps, more: most, expected });
                for (t, m) in targets.iter_mut().zip(&more) {
                    *t += m;
                }
            }
        }
    }
    results
}

/// What the looks at a run have seen so far.
#[derive(Default)]
struct LookState {
    /// Wall time of each scenario's repetitions (both sides) and how many: its pace.
    spent: Vec<(Duration, u32)>,
    /// When the first look was taken, since measuring began.
    first_at: Option<Duration>,
    /// The most repetitions a side, fixed at the first look.
    max_repetitions: Option<u32>,
    taken: u32,
}

impl LookState {
    /// Takes a look at `results` (measured to `targets` per scenario, `elapsed` into the run):
    /// the repetitions each scenario gets next and how long they should take, or why the looks
    /// end. A look that would overrun the budget is shrunk to what fits.
    fn next(
        &mut self,
        ext: &mut Extension<'_>,
        targets: &[u32],
        elapsed: Duration,
        results: &mut Results,
    ) -> Result<(Vec<u32>, Duration), LooksEnded> {
        let reps = targets.iter().copied().max().unwrap_or(0);
        let first_at = *self.first_at.get_or_insert(elapsed);
        let budget = match ext.budget {
            Budget::Total(d) => d,
            Budget::AfterFirstLook(d) => first_at + d,
        };
        let pace: Vec<Duration> = self.spent.iter().map(|(d, n)| d.checked_div(*n).unwrap_or_default()).collect();
        let max = *self.max_repetitions.get_or_insert_with(|| match ext.max_repetitions {
            MostRepetitions::Exactly(n) => n,
            // As many as the budget holds for the scenario quickest to repeat, should it be the
            // only one still undecided (scenarios decided early leave the rest their time).
            MostRepetitions::WithinBudget { ceiling } => {
                let left = budget.saturating_sub(elapsed).as_secs_f64();
                let rounds = pace.iter().map(|p| left / p.as_secs_f64().max(1e-9)).fold(0.0, f64::max);
                (reps + rounds.floor() as u32).clamp(reps, ceiling.max(reps))
            }
        });
        self.taken += 1;
        if let Some(looks) = results.looks.as_mut() {
            looks.repetitions.push(reps);
            looks.max_repetitions = max;
        }
        let wants = (ext.plan)(results);
        if wants.iter().all(Option::is_none) {
            return Err(LooksEnded::Decided);
        }
        let mut more: Vec<u32> = targets
            .iter()
            .enumerate()
            .map(|(si, &have)| match wants.get(si).copied().flatten() {
                None => 0,
                // At most 1.5 times as many more as it has, so that a clear case stops early;
                // enough by power yet undecided (a change near its minimum effect): half again.
                Some(want) => {
                    let growth = (have * 3 / 2).max(2);
                    if want > have { (want - have).min(growth) } else { (have / 2).max(2) }
                        .min(max.saturating_sub(have))
                }
            })
            .collect();
        if self.taken >= ext.max_looks {
            return Err(LooksEnded::MaxLooks);
        }
        if more.iter().all(|m| *m == 0) {
            // At the most repetitions: the configured looks', or what the budget holds.
            return Err(match ext.max_repetitions {
                MostRepetitions::Exactly(_) => LooksEnded::MaxLooks,
                MostRepetitions::WithinBudget { .. } => LooksEnded::Budget,
            });
        }
        let cost = |more: &[u32]| -> Duration { more.iter().zip(&pace).map(|(m, p)| *p * *m).sum() };
        let left = budget.saturating_sub(elapsed);
        let expected = cost(&more);
        if expected > left {
            let fits = left.as_secs_f64() / expected.as_secs_f64();
            more.iter_mut().for_each(|m| *m = (f64::from(*m) * fits).floor() as u32);
        }
        if more.iter().all(|m| *m == 0) {
            return Err(LooksEnded::Budget);
        }
        Ok((more.clone(), cost(&more)))
    }
}

fn scenario_result(s: &Scenario) -> ScenarioResult {
    let model = s.model();
    let (concurrency, rate_per_s, max_in_flight, iterations) = match &model {
        LoadModel::Closed { vus, .. } => (Some(vus.max().round() as u32), None, None, None),
        LoadModel::Open { rate, max_in_flight, .. } => (None, Some(mean_rate(rate)), Some(*max_in_flight), None),
        LoadModel::Iterations { concurrency, iterations } => (Some(*concurrency), None, None, Some(*iterations)),
    };
    ScenarioResult {
        name: s.name.clone(),
        executor: s.executor.name().to_string(),
        concurrency,
        rate_per_s,
        max_in_flight,
        iterations,
        warmup_s: model.warmup().as_secs_f64(),
        duration_s: model.duration().unwrap_or_default().as_secs_f64(),
        phase: match (&s.spike, &s.breakpoint, s.soak) {
            (Some(_), _, _) => Some("spike".to_string()),
            (_, Some(_), _) => Some("breakpoint".to_string()),
            (_, _, true) => Some("soak".to_string()),
            _ => None,
        },
        repetitions: Vec::new(),
    }
}

/// The planned mean rate over the measured window (for a constant rate, the rate).
fn mean_rate(rate: &Profile) -> f64 {
    rate.total() / rate.duration().as_secs_f64()
}

async fn run_build(build: &str, plan: &Plan, cancel: &CancellationToken) -> Result<(), RunFailure> {
    let fail = |message: String| RunFailure { kind: FailureKind::Build, message, stderr_tail: Vec::new() };
    // The build's output goes to our stderr, keeping stdout for the report.
    let stderr = std::io::stderr();
    let out = std::os::fd::AsFd::as_fd(&stderr).try_clone_to_owned().map_err(|e| fail(e.to_string()))?;
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(build).envs(&plan.server.env).stdout(std::process::Stdio::from(out)).kill_on_drop(true);
    if let Some(dir) = &plan.server.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run build command `{build}`: {e}")))?;
    tokio::select! {
        status = child.wait() => match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(fail(format!("build command `{build}` failed ({s})"))),
            Err(e) => Err(fail(format!("build command `{build}`: {e}"))),
        },
        _ = cancel.cancelled() => Err(RunFailure {
            kind: FailureKind::Interrupted,
            message: "interrupted during the build".into(),
            stderr_tail: Vec::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> Results {
        Results {
            schema: SCHEMA.to_string(),
            tool_version: "0".into(),
            timestamp: "2026-12-02T00:00:00Z".into(),
            git_sha: None,
            config_source: "test".into(),
            environment: Environment::probe(),
            server: None,
            scenarios: Vec::new(),
            thresholds: Vec::new(),
            failure: None,
            base_run: None,
            pairing: None,
            looks: Some(Looks { repetitions: Vec::new(), max_repetitions: 0, ended: None }),
            sharding: None,
        }
    }

    /// A pilot of `have` repetitions of one scenario at one second each, `elapsed` into a run of
    /// `budget`, whose planner asks for `want`.
    fn look(
        have: u32,
        want: Option<u32>,
        elapsed: u64,
        budget: u64,
    ) -> (Result<(Vec<u32>, Duration), LooksEnded>, Results) {
        let mut state = LookState { spent: vec![(Duration::from_secs(have.into()), have)], ..LookState::default() };
        let mut plan = |_: &Results| vec![want];
        let mut ext = Extension {
            max_looks: 4,
            max_repetitions: MostRepetitions::WithinBudget { ceiling: 200 },
            budget: Budget::Total(Duration::from_secs(budget)),
            plan: &mut plan,
        };
        let mut r = results();
        let next = state.next(&mut ext, &[have], Duration::from_secs(elapsed), &mut r);
        (next, r)
    }

    #[test]
    fn a_timetable_places_every_window_after_the_last_planned_end_the_gap_and_the_warmup() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let gap = Duration::from_secs(2);
        let mut t = Timetable { start: crate::config::CommonStart { at, gap }, previous_end: None };
        let s = Duration::from_secs;
        assert_eq!(t.next(s(1), s(10)), at, "the first window starts at the start; its warm-up before it");
        assert_eq!(t.next(s(3), s(5)), at + s(10 + 2 + 3));
        assert_eq!(t.next(s(0), s(0)), at + s(15 + 5 + 2), "iterations: no planned length");
        assert_eq!(t.next(s(1), s(1)), at + s(22 + 2 + 1));
    }

    #[test]
    fn a_look_grows_by_half_again_at_most_and_the_most_repetitions_follow_the_budget_not_the_data() {
        // 6 of 1 s measured in 6 s of a 60 s budget: at most 6 + 54 a side, whatever is wanted.
        let (next, r) = look(6, Some(200), 6, 60);
        assert_eq!(next, Ok((vec![9], Duration::from_secs(9))), "6 more × 1.5");
        let looks = r.looks.unwrap();
        assert_eq!((looks.repetitions, looks.max_repetitions), (vec![6], 60));
        assert_eq!(look(6, Some(8), 6, 60).0, Ok((vec![2], Duration::from_secs(2))), "what is asked, when less");
        assert_eq!(
            look(6, Some(6), 6, 60).0,
            Ok((vec![3], Duration::from_secs(3))),
            "undecided at its size: half again"
        );
    }

    #[test]
    fn a_scenario_decided_early_leaves_its_time_to_the_others() {
        // Two scenarios of 1 s and 3 s a repetition, 6 each in 24 s of an 84 s budget: the
        // quick one could have the 60 s left to itself, 60 repetitions more.
        let mut state = LookState {
            spent: vec![(Duration::from_secs(6), 6), (Duration::from_secs(18), 6)],
            ..LookState::default()
        };
        let mut plan = |_: &Results| vec![Some(200), None];
        let mut ext = Extension {
            max_looks: 4,
            max_repetitions: MostRepetitions::WithinBudget { ceiling: 200 },
            budget: Budget::Total(Duration::from_secs(84)),
            plan: &mut plan,
        };
        let mut r = results();
        let next = state.next(&mut ext, &[6, 6], Duration::from_secs(24), &mut r);
        assert_eq!(next, Ok((vec![9, 0], Duration::from_secs(9))), "the decided one rests");
        assert_eq!(r.looks.unwrap().max_repetitions, 66);
    }

    #[test]
    fn a_look_that_would_overrun_the_budget_is_shrunk_to_fit_or_not_taken() {
        assert_eq!(look(6, Some(200), 15, 15).0, Err(LooksEnded::Budget), "no repetition fits: at the most");
        assert_eq!(look(6, None, 6, 60).0, Err(LooksEnded::Decided));
        // The first look fixes at most 60 a side; at the second, 15 measured and 10 s left, the
        // 22 more it would take are cut to the 10 that fit.
        let mut state = LookState { spent: vec![(Duration::from_secs(6), 6)], ..LookState::default() };
        let mut plan = |_: &Results| vec![Some(200)];
        let mut ext = Extension {
            max_looks: 4,
            max_repetitions: MostRepetitions::WithinBudget { ceiling: 200 },
            budget: Budget::Total(Duration::from_secs(60)),
            plan: &mut plan,
        };
        let mut r = results();
        assert!(state.next(&mut ext, &[6], Duration::from_secs(6), &mut r).is_ok());
        state.spent = vec![(Duration::from_secs(15), 15)];
        let second = state.next(&mut ext, &[15], Duration::from_secs(50), &mut r);
        assert_eq!(second, Ok((vec![10], Duration::from_secs(10))));
        assert_eq!(r.looks.unwrap().repetitions, vec![6, 15]);
        let mut after_one = |_: &Results| vec![Some(200)];
        ext.plan = &mut after_one;
        ext.max_looks = 2;
        assert_eq!(state.next(&mut ext, &[25], Duration::from_secs(55), &mut results()), Err(LooksEnded::MaxLooks));
    }
}
