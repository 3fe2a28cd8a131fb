//! A profile's `compare:` entries as trials: `suite::compare::BASELINE-vs-CANDIDATE`, one per
//! suite both models run. The trial fails when the candidate is significantly worse (the
//! paired test at the entry's `alpha`) and its pass rate lower by more than `max_drop`; the
//! failure message is the comparison in Markdown. Replay, record and live modes all work:
//! the trial reads the same engine results as the case trials.

use std::sync::Arc;

use libtest_mimic::{Completion, Failed};

use llmtest_spec::CompareSpec;

use crate::engine::{Engine, Plan, Work};
use crate::results::CaseResult;

use super::{Side, Verdict, compare, markdown};

/// One planned compare trial.
pub(crate) struct Planned {
    pub name: String,
    pub suite: String,
    pub spec: CompareSpec,
    /// Both models' work items on the suite.
    pub works: Vec<Work>,
}

/// The compare trials of `plan`'s profile, in trial-name order.
pub(crate) fn planned(plan: &Plan) -> Vec<Planned> {
    let mut out = Vec::new();
    for spec in &plan.profile.compare {
        for suite in &plan.suites {
            if spec
                .suites
                .as_ref()
                .is_some_and(|s| !s.contains(&suite.name))
            {
                continue;
            }
            let works: Vec<Work> = plan
                .work
                .iter()
                .filter(|w| {
                    w.suite.name == suite.name
                        && (w.model == spec.baseline || w.model == spec.candidate)
                })
                .cloned()
                .collect();
            let has = |m: &str| works.iter().any(|w| w.model == m);
            if has(&spec.baseline) && has(&spec.candidate) {
                out.push(Planned {
                    name: format!("{}::compare::{}", suite.name, spec.name()),
                    suite: suite.name.clone(),
                    spec: spec.clone(),
                    works,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Runs (or reads) both models' results on the suite and compares them.
pub(crate) fn run(engine: &Engine, p: &Planned) -> Result<Completion, Failed> {
    for m in [&p.spec.baseline, &p.spec.candidate] {
        if let Some(r) = engine.skip_reason(m) {
            return Ok(Completion::ignored_with(r));
        }
    }
    let results: Vec<Arc<CaseResult>> = p.works.iter().map(|w| engine.result(w)).collect();
    if let Some(e) = crate::harness::unrunnable("comparison", &results) {
        return Err(e);
    }
    let side = |model: &str| Side {
        model: model.to_owned(),
        file: None,
        profile: None,
        cases: results
            .iter()
            .filter(|r| r.model == model)
            .map(|r| r.as_ref())
            .collect(),
    };
    let c = compare(
        &side(&p.spec.baseline),
        &side(&p.spec.candidate),
        p.spec.alpha,
    )
    .map_err(|e| Failed::from(format!("cannot compare: {e}")))?;
    if let Some(want) = p.spec.expect {
        let want = Verdict::from(want);
        return if c.verdict == want {
            Ok(Completion::Completed)
        } else {
            Err(Failed::from(format!(
                "{}\nExpected the verdict `{}`.\n",
                markdown(&c).trim_end(),
                want.as_str()
            )))
        };
    }
    if c.fails(p.spec.max_drop) {
        Err(Failed::from(format!(
            "{}\nThe drop of {:.1} points exceeds max_drop {:.1} points.\n",
            markdown(&c).trim_end(),
            100.0 * c.drop,
            100.0 * p.spec.max_drop
        )))
    } else {
        Ok(Completion::Completed)
    }
}

/// What `llmtest run` prints after its results: one line per compare trial of the profile,
/// from the cases just run.
pub(crate) fn summary_lines(plan: &Plan, cases: &[CaseResult]) -> Vec<String> {
    planned(plan)
        .iter()
        .filter_map(|p| {
            let side = |model: &str| Side {
                model: model.to_owned(),
                file: None,
                profile: None,
                cases: cases
                    .iter()
                    .filter(|c| c.suite == p.suite && c.model == model)
                    .collect(),
            };
            let (b, c) = (side(&p.spec.baseline), side(&p.spec.candidate));
            if b.cases.is_empty() || c.cases.is_empty() {
                return None;
            }
            Some(match compare(&b, &c, p.spec.alpha) {
                Ok(cmp) => format!(
                    "{}: {}{}",
                    p.name,
                    cmp.headline(),
                    match p.spec.expect.map(Verdict::from) {
                        Some(v) if v == cmp.verdict => " — as expected".to_owned(),
                        Some(v) => format!(" — expected {}", v.as_str()),
                        None if cmp.fails(p.spec.max_drop) => {
                            format!(" — beyond max_drop {}", p.spec.max_drop)
                        }
                        None => String::new(),
                    }
                ),
                Err(e) => format!("{}: cannot compare: {e}", p.name),
            })
        })
        .collect()
}
