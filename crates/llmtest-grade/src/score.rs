//! From per-assertion grades to a verdict on one generation, and pass@k over several.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use llmtest_spec::AssertionSpec;

use crate::grader::{Grade, Grader, Outcome, Sample};

/// One assertion's result on one generation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssertionResult {
    /// The type as written (`not-contains` when negated).
    #[serde(rename = "type")]
    pub kind: String,
    pub pass: bool,
    pub score: f64,
    pub weight: f64,
    pub expected: String,
    pub found: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extracted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// The verdict on one generation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Weighted mean of the assertion scores (1.0 when there are no assertions).
    pub score: f64,
    pub assertions: Vec<AssertionResult>,
}

/// Grades one generation with every assertion of its case.
///
/// Scoring: the weighted mean of the assertion scores. Passing: with no `threshold`, every
/// assertion must pass; with one, the score must reach it. A negated assertion passes when
/// the inner one fails (score `1 - s`), except when the inner one reports a special outcome
/// (a code timeout is not a success for `not-code`). An assertion that could not grade
/// (`infra_error`, `judge_error`) makes the sample that outcome even when the threshold is
/// met: its zero would otherwise count as a score.
pub fn grade_sample(
    graders: &[(AssertionSpec, Arc<dyn Grader>)],
    sample: &Sample<'_>,
    threshold: Option<f64>,
    unterminated: bool,
) -> Verdict {
    let pairs = graders.iter().map(|(spec, g)| (spec, g));
    grade_pairs(pairs, graders.len(), sample, threshold, unterminated)
}

/// As [`grade_sample`], with the assertions and their graders in two slices of one length
/// (`graders[i]` built from `specs[i]`): a plan that keeps its cases' assertions need not
/// copy them beside the graders.
pub fn grade_sample_with(
    specs: &[AssertionSpec],
    graders: &[Arc<dyn Grader>],
    sample: &Sample<'_>,
    threshold: Option<f64>,
    unterminated: bool,
) -> Verdict {
    assert_eq!(specs.len(), graders.len(), "one grader per assertion");
    grade_pairs(
        specs.iter().zip(graders),
        specs.len(),
        sample,
        threshold,
        unterminated,
    )
}

fn grade_pairs<'a>(
    graders: impl Iterator<Item = (&'a AssertionSpec, &'a Arc<dyn Grader>)>,
    len: usize,
    sample: &Sample<'_>,
    threshold: Option<f64>,
    unterminated: bool,
) -> Verdict {
    let mut results = Vec::with_capacity(len);
    for (spec, g) in graders {
        let Grade {
            pass,
            score,
            expected,
            found,
            extracted,
            outcome,
            detail,
        } = g.grade(sample);
        let score = if score.is_finite() {
            score.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (pass, score, expected) = if spec.negate && outcome.is_none() {
            (!pass, 1.0 - score, format!("not {expected}"))
        } else {
            (pass, score, expected)
        };
        results.push(AssertionResult {
            kind: spec.display_kind(),
            pass,
            score,
            weight: spec.weight,
            expected,
            found,
            extracted,
            outcome: if pass { None } else { outcome },
            detail,
        });
    }
    let total_w: f64 = results.iter().map(|r| r.weight).sum();
    let score = if results.is_empty() {
        1.0
    } else if total_w > 0.0 {
        results.iter().map(|r| r.weight * r.score).sum::<f64>() / total_w
    } else {
        results.iter().map(|r| r.score).sum::<f64>() / results.len() as f64
    };
    let passed = match threshold {
        None => results.iter().all(|r| r.pass),
        Some(t) => score + 1e-12 >= t,
    };
    // An assertion that could not be graded (sandbox failure, judge error) leaves the
    // score incomplete: the sample is not graded, whatever the threshold says.
    let ungraded = results
        .iter()
        .filter_map(|r| r.outcome)
        .filter(|o| o.is_infra())
        .max_by_key(|o| o.severity());
    let outcome = if unterminated {
        Outcome::UnterminatedReasoning
    } else if let Some(o) = ungraded {
        o
    } else if passed {
        Outcome::Pass
    } else {
        results
            .iter()
            .filter(|r| !r.pass)
            .filter_map(|r| r.outcome)
            .max_by_key(|o| o.severity())
            .unwrap_or(Outcome::Fail)
    };
    Verdict {
        outcome,
        score,
        assertions: results,
    }
}

/// The unbiased pass@k estimator (Chen et al., 2021): the probability that at least one of
/// `k` samples drawn without replacement from `n` generations, `c` of them correct, passes.
/// `1 - C(n-c, k) / C(n, k)`, computed as a product to stay exact in floating point.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let mut prod = 1.0f64;
    for i in (n - c + 1)..=n {
        prod *= 1.0 - k as f64 / i as f64;
    }
    Some(1.0 - prod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_at_k_matches_closed_forms() {
        assert_eq!(pass_at_k(10, 0, 1), Some(0.0));
        assert_eq!(pass_at_k(10, 10, 5), Some(1.0));
        // pass@1 = c/n
        assert!((pass_at_k(10, 3, 1).unwrap() - 0.3).abs() < 1e-12);
        // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10
        assert!((pass_at_k(5, 2, 2).unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(pass_at_k(3, 1, 4), None);
    }
}
