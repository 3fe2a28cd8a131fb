//! `llmtest calibrate`: how far to trust a judge. A calibration set is a suite file whose
//! cases carry a fixed answer and a person's label (`vars: {answer, label: pass|fail}`) and
//! one model-graded assertion; the judge grades each answer and its verdicts are compared
//! with the labels: accuracy, Cohen's kappa, the confusion matrix and the disagreements.
//!
//! ```yaml
//! version: 1
//! suite: calibration-closed-qa
//! models: []                  # no candidate model: the answers are in the cases
//! defaults:
//!   expect:
//!     - {type: closed-qa, criterion: "{{ criterion }}"}
//! cases:
//!   - id: capital-right
//!     prompt: What is the capital of Australia?
//!     vars: {answer: Canberra., label: pass, criterion: The answer names the capital city correctly.}
//! ```
//!
//! The judge is the profile's `judge:` (or `--judge`); the profile's mode applies, so
//! `--profile record` records the judge's answers and a replay profile replays them.
//!
//! An item the judge gave no verdict for (the call failed, or its answer could not be read)
//! is a judge error: listed with its reason, counted, and left out of the agreement, which
//! is computed over the items judged and printed all the same. Exit codes, as `run`'s:
//! 0 agreement measured; 1 a set's kappa below `--min-kappa` (or undefined); 2 an invalid
//! set, config or argument (nothing asked); 3 any judge error (the measurement is
//! incomplete; it takes precedence over 1).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use llmtest_grade::judge::KINDS;
use llmtest_grade::{Outcome, Sample};
use llmtest_spec::Suite;

use crate::Llmtest;
use crate::engine::{Engine, Plan, PlanOptions};

/// Where calibration sets live by default.
pub const DEFAULT_DIR: &str = "fixtures/judge-calibration";

#[derive(clap::Args, Clone)]
#[command(
    after_help = "Exit codes: 0 agreement measured; 1 a set's kappa below --min-kappa \
(or undefined); 2 invalid set, config or arguments; 3 judge errors (items without a verdict \
are listed, counted and left out of the agreement, which is still printed)."
)]
pub(crate) struct Args {
    /// Calibration set files or directories (default: fixtures/judge-calibration).
    sets: Vec<PathBuf>,
    /// The profile (its mode and its `judge:`).
    #[arg(long, short = 'p')]
    profile: Option<String>,
    /// The judge model, instead of the profile's `judge:`.
    #[arg(long)]
    judge: Option<String>,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    json: bool,
    /// Exit 1 when a set's Cohen's kappa is below this (or undefined): gate CI on a judge
    /// only after it agrees with people.
    #[arg(long, value_name = "KAPPA")]
    min_kappa: Option<f64>,
}

/// Agreement between people's labels and a judge's verdicts on the same items.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Agreement {
    /// Items both labelled and judged.
    pub n: usize,
    pub accuracy: f64,
    /// Cohen's kappa; `None` when chance agreement is already 1 (both sides constant).
    pub kappa: Option<f64>,
    /// `[human][judge]`, index 0 = pass, 1 = fail.
    pub confusion: [[usize; 2]; 2],
}

/// Accuracy, Cohen's kappa and the confusion matrix of `(human, judge)` pass/fail pairs.
///
/// κ = (p_o − p_e) / (1 − p_e), p_o the observed agreement, p_e the agreement expected by
/// chance from each side's pass rate.
pub fn agreement(pairs: &[(bool, bool)]) -> Agreement {
    let mut m = [[0usize; 2]; 2];
    for &(h, j) in pairs {
        m[usize::from(!h)][usize::from(!j)] += 1;
    }
    let n = pairs.len();
    if n == 0 {
        return Agreement {
            n,
            accuracy: 0.0,
            kappa: None,
            confusion: m,
        };
    }
    let nf = n as f64;
    let po = (m[0][0] + m[1][1]) as f64 / nf;
    let human_pass = (m[0][0] + m[0][1]) as f64 / nf;
    let judge_pass = (m[0][0] + m[1][0]) as f64 / nf;
    let pe = human_pass * judge_pass + (1.0 - human_pass) * (1.0 - judge_pass);
    let kappa = (pe < 1.0 - 1e-12).then(|| (po - pe) / (1.0 - pe));
    Agreement {
        n,
        accuracy: po,
        kappa,
        confusion: m,
    }
}

/// One calibration item as judged.
#[derive(Clone, Debug, Serialize)]
struct Item {
    id: String,
    label: bool,
    /// `pass`, `fail`, `judge_error` or `unstable`.
    verdict: Outcome,
    found: String,
}

#[derive(Clone, Debug, Serialize)]
struct SetReport {
    set: String,
    file: String,
    assertion: String,
    items: Vec<Item>,
    judge_errors: usize,
    unstable: usize,
    agreement: Agreement,
}

pub(crate) fn main(lt: &Llmtest, root: &std::path::Path, a: Args) -> ExitCode {
    let registry = Arc::new(lt.grader_registry(root));
    let paths = if a.sets.is_empty() {
        vec![PathBuf::from(DEFAULT_DIR)]
    } else {
        a.sets.clone()
    };
    let opts = PlanOptions {
        paths,
        profile: a.profile.clone(),
        ..PlanOptions::default()
    };
    let mut plan = match Plan::load(root, &registry, &opts) {
        Ok(p) => p,
        Err(d) => {
            eprintln!("{d}");
            return ExitCode::from(2);
        }
    };
    if let Some(j) = &a.judge {
        if !plan.project.models.contains_key(j) {
            let known: Vec<&str> = plan.project.models.keys().map(String::as_str).collect();
            eprintln!(
                "error: `--judge {j}` is not a configured model; {}",
                llmtest_spec::unknown_name_hint(j, known.iter().copied())
            );
            return ExitCode::from(2);
        }
        plan.profile.judge = Some(j.clone());
    }
    // Every set: labelled answers and exactly one judge assertion.
    let mut problems = Vec::new();
    let mut sets: Vec<(Arc<Suite>, usize)> = Vec::new();
    for s in &plan.suites {
        let Some(ai) = s.cases.first().and_then(|c| {
            c.expect
                .iter()
                .position(|x| KINDS.contains(&x.kind.as_str()))
        }) else {
            problems.push(format!(
                "{}: no model-graded assertion ({}) to calibrate",
                s.file.display(),
                KINDS.join(", ")
            ));
            continue;
        };
        for c in &s.cases {
            let label = c.vars.get("label").and_then(Value::as_str);
            if !matches!(label, Some("pass" | "fail")) {
                problems.push(format!(
                    "{}:{}:{}: case `{}` needs `vars.label: pass` or `fail`",
                    c.loc.file.display(),
                    c.loc.line,
                    c.loc.col,
                    c.id
                ));
            }
            if !c.vars.get("answer").is_some_and(Value::is_string) {
                problems.push(format!(
                    "{}:{}:{}: case `{}` needs `vars.answer` (the answer to judge)",
                    c.loc.file.display(),
                    c.loc.line,
                    c.loc.col,
                    c.id
                ));
            }
        }
        sets.push((s.clone(), ai));
    }
    let judges: Vec<String> =
        crate::judge::models_named(&plan.suites, plan.profile.judge.as_deref())
            .into_iter()
            .collect();
    if judges.is_empty() {
        problems.push("no judge model: pass `--judge MODEL` or set `judge:` on the profile".into());
    }
    if !problems.is_empty() {
        for p in problems {
            eprintln!("error: {p}");
        }
        return ExitCode::from(2);
    }
    let engine = match Engine::new(&plan, &judges, &lt.backend_factories()) {
        Ok(e) => e,
        Err(d) => {
            eprintln!("{d}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "llmtest: calibrating {} against {} set(s), profile `{}` ({})",
        judges.join(", "),
        sets.len(),
        plan.profile.name,
        plan.profile.mode.as_str()
    );
    let mut reports = Vec::new();
    for (suite, ai) in &sets {
        reports.push(judge_set(&engine, &registry, suite, *ai));
    }
    engine.shutdown();
    let out = if a.json {
        serde_json::to_string_pretty(&serde_json::json!({
            "judges": judges,
            "profile": plan.profile.name,
            "mode": plan.profile.mode.as_str(),
            "sets": reports,
        }))
        .expect("json")
    } else {
        markdown(&judges, &plan, &reports)
    };
    let _ = writeln!(std::io::stdout(), "{out}");
    if reports.iter().any(|r| r.judge_errors > 0) {
        return ExitCode::from(3);
    }
    if let Some(min) = a.min_kappa
        && reports
            .iter()
            .any(|r| r.agreement.kappa.is_none_or(|k| k < min))
    {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn judge_set(
    engine: &Engine,
    registry: &llmtest_grade::GraderRegistry,
    suite: &Arc<Suite>,
    ai: usize,
) -> SetReport {
    let spec = suite.cases[0].expect[ai].clone();
    let spec = &spec;
    let judge_one = |i: usize| -> Item {
        let case = &suite.cases[i];
        // Each case's own rendering of the assertion (its variables filled in).
        let spec = case
            .expect
            .iter()
            .find(|x| x.kind == spec.kind)
            .cloned()
            .unwrap_or_else(|| spec.clone());
        let answer = case.vars["answer"].as_str().unwrap_or_default();
        let label = case.vars["label"].as_str() == Some("pass");
        let judge = crate::judge::CaseJudge::new(engine.hub(), suite.clone(), i);
        let (verdict, found) = match registry.build(&spec) {
            Err(e) => (Outcome::JudgeError, e.message),
            Ok(g) => {
                let s = Sample {
                    judge: Some(&judge),
                    ..Sample::of_answer(&suite.name, "calibration", case, answer)
                };
                let g = g.grade(&s);
                let o = match g.outcome {
                    Some(o @ (Outcome::JudgeError | Outcome::Unstable)) => o,
                    _ if g.pass => Outcome::Pass,
                    _ => Outcome::Fail,
                };
                (o, g.found)
            }
        };
        Item {
            id: case.id.clone(),
            label,
            verdict,
            found,
        }
    };
    // A few items at a time: each blocks on its judge call, the backend bounds concurrency.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut items: Vec<(usize, Item)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8.min(suite.cases.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= suite.cases.len() {
                            return done;
                        }
                        done.push((i, judge_one(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().expect("calibration thread"))
            .collect()
    });
    items.sort_by_key(|(i, _)| *i);
    let items: Vec<Item> = items.into_iter().map(|(_, it)| it).collect();
    let pairs: Vec<(bool, bool)> = items
        .iter()
        .filter(|i| matches!(i.verdict, Outcome::Pass | Outcome::Fail))
        .map(|i| (i.label, i.verdict == Outcome::Pass))
        .collect();
    SetReport {
        set: suite.name.clone(),
        file: suite.file.display().to_string(),
        assertion: spec.kind.clone(),
        judge_errors: items
            .iter()
            .filter(|i| i.verdict == Outcome::JudgeError)
            .count(),
        unstable: items
            .iter()
            .filter(|i| i.verdict == Outcome::Unstable)
            .count(),
        agreement: agreement(&pairs),
        items,
    }
}

fn markdown(judges: &[String], plan: &Plan, reports: &[SetReport]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Judge calibration: {} (profile `{}`, {})\n",
        judges.join(", "),
        plan.profile.name,
        plan.profile.mode.as_str()
    );
    for r in reports {
        let a = &r.agreement;
        let _ = writeln!(
            o,
            "## {} (`{}`, {} items, {})\n",
            r.set,
            r.assertion,
            r.items.len(),
            r.file
        );
        let kappa = a
            .kappa
            .map_or("undefined (one side is constant)".into(), |k| {
                format!("{k:.3}")
            });
        let _ = writeln!(
            o,
            "{} judged (judge errors: {}, unstable: {}): accuracy {:.3}, Cohen's kappa {kappa}\n",
            a.n, r.judge_errors, r.unstable, a.accuracy
        );
        if r.judge_errors + r.unstable > 0 {
            let _ = writeln!(
                o,
                "The agreement is over the {} item(s) with one verdict: {} judge error(s) and {} unstable item(s) are left out{}.\n",
                a.n,
                r.judge_errors,
                r.unstable,
                if r.judge_errors > 0 {
                    " (judge errors: exit 3)"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(o, "| human \\ judge | pass | fail |\n|---|---|---|");
        let _ = writeln!(
            o,
            "| pass | {} | {} |",
            a.confusion[0][0], a.confusion[0][1]
        );
        let _ = writeln!(
            o,
            "| fail | {} | {} |\n",
            a.confusion[1][0], a.confusion[1][1]
        );
        let odd: Vec<&Item> = r
            .items
            .iter()
            .filter(|i| {
                !matches!(
                    (i.label, i.verdict),
                    (true, Outcome::Pass) | (false, Outcome::Fail)
                )
            })
            .collect();
        if !odd.is_empty() {
            let _ = writeln!(o, "Disagreements and errors:\n");
            for i in odd {
                let _ = writeln!(
                    o,
                    "- `{}`: labelled {}, judge {}: {}",
                    i.id,
                    if i.label { "pass" } else { "fail" },
                    i.verdict,
                    crate::grade::text::excerpt(&i.found)
                );
            }
            o.push('\n');
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labels and verdicts of the reference computation below.
    const HUMAN: [u8; 20] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    const JUDGE: [u8; 20] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0];

    #[test]
    fn kappa_matches_scikit_learn() {
        // Reference, computed once with scikit-learn 1.9.1:
        //   python -c "from sklearn.metrics import cohen_kappa_score as k;
        //   print(repr(k([1]*12+[0]*8, [1]*9+[0]*3+[1]*2+[0]*6)))"
        // → 0.4897959183673469
        let pairs: Vec<(bool, bool)> = HUMAN
            .iter()
            .zip(JUDGE)
            .map(|(h, j)| (*h == 1, j == 1))
            .collect();
        let a = agreement(&pairs);
        assert_eq!(a.n, 20);
        assert_eq!(a.confusion, [[9, 3], [2, 6]]);
        assert!((a.accuracy - 0.75).abs() < 1e-12);
        let k = a.kappa.unwrap();
        assert!((k - SKLEARN_KAPPA).abs() < 1e-12, "{k}");
    }

    const SKLEARN_KAPPA: f64 = 0.4897959183673469;

    #[test]
    fn kappa_edge_cases() {
        // Perfect agreement, perfect disagreement, chance-level, and constant sides.
        let perfect = agreement(&[(true, true), (false, false), (true, true)]);
        assert_eq!(perfect.kappa, Some(1.0));
        let opposite = agreement(&[(true, false), (false, true)]);
        assert_eq!(opposite.kappa, Some(-1.0));
        // A judge that always says pass agrees with half the labels, by chance only: κ = 0.
        let yes = agreement(&[(true, true), (false, true), (true, true), (false, true)]);
        assert!((yes.accuracy - 0.5).abs() < 1e-12);
        assert_eq!(yes.kappa, Some(0.0));
        assert_eq!(agreement(&[(true, true), (true, true)]).kappa, None);
        assert_eq!(agreement(&[]).n, 0);
    }
}
