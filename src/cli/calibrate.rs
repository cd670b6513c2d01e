//! `mcp-perfcheck calibrate`: A/A comparisons of one build, summarised into the calibration
//! file that later comparisons cite.

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{Outcome, cancel_on_signal, extension, load_plan, planner, policy_of, progress};
use crate::load::{self, Progress};

use crate::measure::Environment;
use crate::report;
use crate::stats::{self, CALIBRATION_SCHEMA, CalibrationRecord, Verdict};

pub(super) async fn calibrate(
    config: Option<&Path>,
    comparisons: usize,
    out: &Path,
    keep: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let plan = load_plan(config)?;
    if let Some(dir) = keep {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let policy = policy_of(&plan.compare, Some(&plan.workload));
    eprintln!(
        "mcp-perfcheck: calibrating on `{}` ({}): {comparisons} A/A comparisons of {} repetitions a side",
        plan.server, plan.source, plan.workload.repetitions
    );
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    let mut view = progress::ProgressView::new();
    let mut done = Vec::with_capacity(comparisons);
    for i in 0..comparisons {
        let mut on_event = |event: Progress<'_>| {
            view.engine(&event);
            ControlFlow::Continue(())
        };
        let side = load::BaseSide { plan: &plan, git_sha: None, seed: i as u64 };
        let mut planner = planner(&plan);
        let mut head =
            load::execute_ab(&plan, side, extension(&plan, true, &mut planner), &cancel, &mut on_event).await;
        if let Some(f) = head.failure.as_ref().or(head.base_run.as_ref().and_then(|b| b.failure.as_ref())) {
            anyhow::bail!("A/A comparison {} of {comparisons}: the run failed: {}", i + 1, f.message);
        }
        if let Some(dir) = keep {
            let path = dir.join(format!("aa-{}.json", i + 1));
            head.save(&path).with_context(|| format!("cannot write {}", path.display()))?;
        }
        let base = head.base_run.take().context("an A/B run holds its base side")?;
        let c = stats::compare(&base, &head, &policy);
        let said = match c.verdict {
            Verdict::Fail => {
                format!("false alarm ({} metric(s) called regressions)", c.count(stats::MetricVerdict::Regression))
            }
            Verdict::Pass => "no regression".into(),
            Verdict::Inconclusive => "inconclusive".into(),
            Verdict::Error => format!("error: {}", c.notes.join("; ")),
        };
        view.finished(&format!("A/A comparison {}/{comparisons}: {said}", i + 1));
        done.push(c);
    }
    let record = CalibrationRecord {
        schema: CALIBRATION_SCHEMA.into(),
        timestamp: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        config_source: plan.source.clone(),
        environment: Environment::probe(),
        calibration: stats::calibrate(&done),
    };
    let json = serde_json::to_string_pretty(&record)? + "\n";
    std::fs::write(out, json).with_context(|| format!("cannot write {}", out.display()))?;
    print!("{}", report::calibration_text(&record)?);
    eprintln!("calibration written to {} (compare cites it)", out.display());
    Ok(Outcome::Pass)
}
