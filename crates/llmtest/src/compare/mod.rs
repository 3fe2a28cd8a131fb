//! `llmtest compare`: is the candidate model worse than the baseline, or is the difference
//! noise? A paired comparison of two models on the same cases.
//!
//! ```text
//! llmtest compare target/llmtest/results.json --baseline tiny-fp --candidate tiny-q4
//! llmtest compare main.json pr.json --format json -o compare.json
//! ```
//!
//! | step | what |
//! |---|---|
//! | pairing | cases by `suite::case`; both sides must hold the same cases with the same expectations (else bad input, exit 2, naming the cases) |
//! | excluded | a case skipped or with an infrastructure error on either side is listed, never counted as a pass or a fail |
//! | flips | pass→fail (the candidate lost it) first, then fail→pass, each with both answers and what each assertion found |
//! | rates | pass rate per side with its Wilson 95% interval |
//! | test | one sample per case: McNemar's exact test on the discordant pairs; `samples: n`: the exact sign test on per-case pass-rate differences (McNemar's when n is 1) |
//! | verdict | `regression` / `improvement` when p < α (default 0.05), else `no_significant_change` |
//!
//! The same comparison runs as a `cargo test` trial from a profile's `compare:` block
//! ([`trial`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use llmtest_grade::Outcome;

use crate::results::CaseResult;
use crate::stats::{Z95, sign_test, wilson};

mod command;
mod render;
pub(crate) mod trial;

pub(crate) use command::{CompareArgs, command};
pub use render::{json, markdown};

/// Bumped on any incompatible change of the compare JSON.
pub const COMPARE_SCHEMA_VERSION: u32 = 1;

/// Default significance level.
pub const DEFAULT_ALPHA: f64 = 0.05;

/// One side of a comparison: a model's case results, and where they came from.
pub struct Side<'a> {
    pub model: String,
    /// The results file, when read from one.
    pub file: Option<String>,
    pub profile: Option<String>,
    pub cases: Vec<&'a CaseResult>,
}

/// A whole comparison (`--format json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Comparison {
    pub schema_version: u32,
    pub llmtest_version: String,
    pub baseline: Arm,
    pub candidate: Arm,
    pub alpha: f64,
    /// `mcnemar_exact` (one sample per case) or `sign_test` (several).
    pub test: Test,
    /// Cases graded on both sides.
    pub paired: usize,
    /// Cases the candidate does worse on (pass→fail with one sample).
    pub worse: usize,
    /// Cases the candidate does better on.
    pub better: usize,
    /// Two-sided exact p-value of the paired test.
    pub p_value: f64,
    /// Baseline pass rate minus candidate pass rate (a fraction; negative: the candidate is better).
    pub drop: f64,
    pub verdict: Verdict,
    /// Worse cases first, then better ones, each in `suite::case` order.
    pub flips: Vec<Flip>,
    /// Cases left out of the test, and why.
    pub excluded: Vec<Excluded>,
    /// The same comparison per suite, when the cases span several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_suite: Vec<SuiteRow>,
}

/// A side's pass rate.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Arm {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Passing samples over the paired cases (cases, with one sample each).
    pub passed: usize,
    pub samples: usize,
    /// Mean per-case pass rate over the paired cases.
    pub pass_rate: f64,
    /// Wilson 95% interval of `passed / samples` (samples treated as independent).
    pub ci_low: f64,
    pub ci_high: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    McnemarExact,
    SignTest,
}

impl Test {
    pub fn describe(self) -> &'static str {
        match self {
            Test::McnemarExact => "exact McNemar test on the discordant pairs",
            Test::SignTest => "exact sign test on per-case pass-rate differences",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regression,
    Improvement,
    NoSignificantChange,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::NoSignificantChange => "no significant change",
        }
    }
}

impl From<llmtest_spec::ExpectVerdict> for Verdict {
    fn from(v: llmtest_spec::ExpectVerdict) -> Verdict {
        match v {
            llmtest_spec::ExpectVerdict::Regression => Verdict::Regression,
            llmtest_spec::ExpectVerdict::Improvement => Verdict::Improvement,
            llmtest_spec::ExpectVerdict::NoSignificantChange => Verdict::NoSignificantChange,
        }
    }
}

/// A case whose result differs between the two sides.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Flip {
    pub suite: String,
    pub case: String,
    /// `worse` (the candidate lost it) or `better`.
    pub direction: Direction,
    pub baseline: CaseView,
    pub candidate: CaseView,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Worse,
    Better,
}

/// What one side answered on a flipped case: its outcome, a representative answer (the first
/// failing sample of a failing side, else the first), and what each assertion found.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaseView {
    pub outcome: Outcome,
    pub passed: usize,
    pub samples: usize,
    pub answer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extracted: Option<String>,
    pub assertions: Vec<Check>,
}

/// One assertion's verdict on the shown answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Check {
    #[serde(rename = "type")]
    pub kind: String,
    pub pass: bool,
    pub expected: String,
    pub found: String,
}

/// A case not counted, with the reason.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Excluded {
    pub suite: String,
    pub case: String,
    pub baseline: Outcome,
    pub candidate: Outcome,
}

impl Excluded {
    /// Whether an infrastructure failure (not a skip by design) kept the case out.
    pub fn is_infra(&self) -> bool {
        self.baseline.is_infra() || self.candidate.is_infra()
    }
}

/// One suite's share of a comparison.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SuiteRow {
    pub suite: String,
    pub paired: usize,
    pub baseline_rate: f64,
    pub candidate_rate: f64,
    pub worse: usize,
    pub better: usize,
    pub p_value: f64,
}

/// Why two sides cannot be compared (bad input: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(
        "the two sides do not hold the same cases ({} only in the baseline, {} only in the candidate): {}\n  hint: compare results of the same suites (the same `--filter`, the same suite files)",
        only_baseline.len(),
        only_candidate.len(),
        list_cases(only_baseline, only_candidate)
    )]
    CasesDiffer {
        only_baseline: Vec<String>,
        only_candidate: Vec<String>,
    },
    #[error(
        "{} case(s) expect different answers on the two sides (the suite changed between the runs): {}\n  hint: re-run the baseline on the current suites",
        cases.len(),
        first_names(cases)
    )]
    ExpectationsDiffer { cases: Vec<String> },
    #[error(
        "suite(s) {} changed between the two runs (their cases, prompts or assertions differ)\n  hint: re-run the baseline on the current suites",
        .0.join(", ")
    )]
    SuitesChanged(Vec<String>),
    #[error("{file}: no model `{model}`; it holds {}", available.join(", "))]
    UnknownModel {
        file: String,
        model: String,
        available: Vec<String>,
    },
    #[error("{file} holds {} models ({}): name one with `--{role} MODEL`", available.len(), available.join(", "))]
    AmbiguousModel {
        file: String,
        role: &'static str,
        available: Vec<String>,
    },
    #[error("--suite {suite}: no such suite in the results; they hold {known}")]
    UnknownSuite { suite: String, known: String },
    #[error("baseline and candidate are the same results of `{0}`")]
    SameSide(String),
    #[error("no case was graded on both sides ({0} excluded: skipped or infrastructure errors)")]
    NothingPaired(usize),
    #[error("--alpha {0} is out of range: a significance level is in (0, 1), e.g. 0.05")]
    Alpha(f64),
    #[error(transparent)]
    Read(#[from] crate::results::ReadError),
}

fn first_names(v: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut s = v.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if v.len() > SHOWN {
        s.push_str(&format!(", … ({} more)", v.len() - SHOWN));
    }
    s
}

fn list_cases(a: &[String], b: &[String]) -> String {
    let mut parts = Vec::new();
    if !a.is_empty() {
        parts.push(format!("only in the baseline: {}", first_names(a)));
    }
    if !b.is_empty() {
        parts.push(format!("only in the candidate: {}", first_names(b)));
    }
    parts.join("; ")
}

/// How a case counts on one side: graded (with its passing samples) or left out.
fn graded(c: &CaseResult) -> Option<(usize, usize)> {
    if c.outcome != Outcome::Pass && !c.outcome.is_model_failure() {
        return None;
    }
    if c.samples.len() <= 1 {
        return Some((usize::from(c.outcome == Outcome::Pass), 1));
    }
    let passed = c
        .samples
        .iter()
        .filter(|s| s.outcome == Outcome::Pass)
        .count();
    Some((passed, c.samples.len()))
}

/// What the suite expects of a case, as recorded in its results (the first sample's
/// assertions): two runs of different suite versions disagree here.
fn expectations(c: &CaseResult) -> Option<Vec<(&str, &str)>> {
    c.samples.first().map(|s| {
        s.assertions
            .iter()
            .map(|a| (a.kind.as_str(), a.expected.as_str()))
            .collect()
    })
}

fn index<'a>(s: &Side<'a>) -> BTreeMap<String, &'a CaseResult> {
    s.cases.iter().map(|c| (key(c), *c)).collect()
}

fn key(c: &CaseResult) -> String {
    format!("{}::{}", c.suite, c.case)
}

/// Compares `candidate` with `baseline` case by case at significance level `alpha`.
pub fn compare(baseline: &Side, candidate: &Side, alpha: f64) -> Result<Comparison, CompareError> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(CompareError::Alpha(alpha));
    }
    if baseline.model == candidate.model && baseline.file == candidate.file {
        return Err(CompareError::SameSide(baseline.model.clone()));
    }
    let (b, c) = (index(baseline), index(candidate));
    let only_baseline: Vec<String> = b.keys().filter(|k| !c.contains_key(*k)).cloned().collect();
    let only_candidate: Vec<String> = c.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
    if !only_baseline.is_empty() || !only_candidate.is_empty() {
        return Err(CompareError::CasesDiffer {
            only_baseline,
            only_candidate,
        });
    }
    let changed: Vec<String> = b
        .iter()
        .filter(|(k, bc)| match (expectations(bc), expectations(c[*k])) {
            (Some(x), Some(y)) => x != y,
            _ => false,
        })
        .map(|(k, _)| k.clone())
        .collect();
    if !changed.is_empty() {
        return Err(CompareError::ExpectationsDiffer { cases: changed });
    }

    let mut pairs: Vec<Pair> = Vec::new();
    let mut excluded = Vec::new();
    for (k, bc) in &b {
        let cc = c[k];
        match (graded(bc), graded(cc)) {
            (Some(x), Some(y)) => pairs.push(Pair {
                b: bc,
                c: cc,
                bs: x,
                cs: y,
            }),
            _ => excluded.push(Excluded {
                suite: bc.suite.clone(),
                case: bc.case.clone(),
                baseline: bc.outcome,
                candidate: cc.outcome,
            }),
        }
    }
    if pairs.is_empty() {
        return Err(CompareError::NothingPaired(excluded.len()));
    }
    let test = if pairs.iter().all(|p| p.bs.1 == 1 && p.cs.1 == 1) {
        Test::McnemarExact
    } else {
        Test::SignTest
    };
    let stats = Stats::of(&pairs);
    let verdict = if stats.p_value < alpha {
        if stats.worse > stats.better {
            Verdict::Regression
        } else {
            Verdict::Improvement
        }
    } else {
        Verdict::NoSignificantChange
    };
    let mut flips: Vec<Flip> = pairs
        .iter()
        .filter(|p| p.diff() < 0.0)
        .map(|p| p.flip(Direction::Worse))
        .collect();
    flips.extend(
        pairs
            .iter()
            .filter(|p| p.diff() > 0.0)
            .map(|p| p.flip(Direction::Better)),
    );
    let mut suites: BTreeMap<&str, Vec<Pair>> = BTreeMap::new();
    for p in &pairs {
        suites.entry(p.b.suite.as_str()).or_default().push(*p);
    }
    let by_suite = if suites.len() > 1 {
        suites
            .iter()
            .map(|(s, ps)| {
                let st = Stats::of(ps);
                SuiteRow {
                    suite: (*s).to_owned(),
                    paired: ps.len(),
                    baseline_rate: st.rate_b,
                    candidate_rate: st.rate_c,
                    worse: st.worse,
                    better: st.better,
                    p_value: st.p_value,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let arm = |s: &Side, passed: usize, samples: usize, rate: f64| {
        let (lo, hi) = wilson(passed, samples, Z95);
        Arm {
            model: s.model.clone(),
            file: s.file.clone(),
            profile: s.profile.clone(),
            passed,
            samples,
            pass_rate: rate,
            ci_low: lo,
            ci_high: hi,
        }
    };
    Ok(Comparison {
        schema_version: COMPARE_SCHEMA_VERSION,
        llmtest_version: env!("CARGO_PKG_VERSION").to_owned(),
        baseline: arm(baseline, stats.passed_b.0, stats.passed_b.1, stats.rate_b),
        candidate: arm(candidate, stats.passed_c.0, stats.passed_c.1, stats.rate_c),
        alpha,
        test,
        paired: pairs.len(),
        worse: stats.worse,
        better: stats.better,
        p_value: stats.p_value,
        drop: stats.rate_b - stats.rate_c,
        verdict,
        flips,
        excluded,
        by_suite,
    })
}

impl Comparison {
    /// Whether a `compare:` trial with this `max_drop` fails: a significant regression whose
    /// pass-rate drop exceeds `max_drop`.
    pub fn fails(&self, max_drop: f64) -> bool {
        self.verdict == Verdict::Regression && self.drop > max_drop + 1e-12
    }

    /// Exit code of `llmtest compare`: 1 on a significant regression, else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.verdict == Verdict::Regression)
    }

    /// One line: the verdict, both pass rates, the discordant counts and the p-value.
    pub fn headline(&self) -> String {
        format!(
            "{}: {} {} → {} {} ({} worse, {} better of {} paired; {} p = {})",
            self.verdict.as_str(),
            self.baseline.model,
            pct(self.baseline.pass_rate),
            self.candidate.model,
            pct(self.candidate.pass_rate),
            self.worse,
            self.better,
            self.paired,
            match self.test {
                Test::McnemarExact => "McNemar",
                Test::SignTest => "sign test",
            },
            p_text(self.p_value)
        )
    }
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// A p-value to 3 significant digits, small ones in scientific notation.
pub(crate) fn p_text(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.2e}")
    }
}

#[derive(Clone, Copy)]
struct Pair<'a> {
    b: &'a CaseResult,
    c: &'a CaseResult,
    /// (passed, samples) of the baseline and of the candidate.
    bs: (usize, usize),
    cs: (usize, usize),
}

impl Pair<'_> {
    /// Candidate's per-case pass rate minus the baseline's.
    fn diff(&self) -> f64 {
        self.cs.0 as f64 / self.cs.1 as f64 - self.bs.0 as f64 / self.bs.1 as f64
    }

    fn flip(&self, direction: Direction) -> Flip {
        Flip {
            suite: self.b.suite.clone(),
            case: self.b.case.clone(),
            direction,
            baseline: view(self.b, self.bs),
            candidate: view(self.c, self.cs),
        }
    }
}

struct Stats {
    passed_b: (usize, usize),
    passed_c: (usize, usize),
    rate_b: f64,
    rate_c: f64,
    worse: usize,
    better: usize,
    p_value: f64,
}

impl Stats {
    fn of(pairs: &[Pair]) -> Stats {
        let sum = |f: fn(&Pair) -> (usize, usize)| {
            pairs
                .iter()
                .map(f)
                .fold((0, 0), |a, x| (a.0 + x.0, a.1 + x.1))
        };
        let rate = |f: fn(&Pair) -> (usize, usize)| {
            pairs
                .iter()
                .map(|p| {
                    let (k, n) = f(p);
                    k as f64 / n as f64
                })
                .sum::<f64>()
                / pairs.len().max(1) as f64
        };
        let worse = pairs.iter().filter(|p| p.diff() < 0.0).count();
        let better = pairs.iter().filter(|p| p.diff() > 0.0).count();
        Stats {
            passed_b: sum(|p| p.bs),
            passed_c: sum(|p| p.cs),
            rate_b: rate(|p| p.bs),
            rate_c: rate(|p| p.cs),
            worse,
            better,
            // With one sample per case the sign test on the differences is exactly McNemar's
            // exact test on the discordant pairs.
            p_value: sign_test(better as u64, worse as u64),
        }
    }
}

fn view(c: &CaseResult, (passed, samples): (usize, usize)) -> CaseView {
    let shown = if c.outcome == Outcome::Pass {
        c.samples.first()
    } else {
        c.samples
            .iter()
            .find(|s| s.outcome != Outcome::Pass)
            .or(c.samples.first())
    };
    CaseView {
        outcome: c.outcome,
        passed,
        samples,
        answer: shown.map(|s| s.answer.clone()).unwrap_or_default(),
        extracted: shown.and_then(|s| s.extracted.clone()),
        assertions: shown
            .map(|s| {
                s.assertions
                    .iter()
                    .map(|a| Check {
                        kind: a.kind.clone(),
                        pass: a.pass,
                        expected: a.expected.clone(),
                        found: a.found.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
