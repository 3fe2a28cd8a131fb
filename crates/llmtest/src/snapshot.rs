//! One insta snapshot per suite × model: per case the outcome, score, extracted answer,
//! per-assertion pass/fail and reasoning status. No latency, no ids of requests, no raw text
//! unless the suite says `snapshot: output` — raw generations live in cassettes and results,
//! or every decoding change would be churn.
//!
//! Files: `<snapshots>/<suite>@<model>.snap`. `cargo insta review` works from the project
//! root; with `CI=true` a changed or missing snapshot fails the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use llmtest_backend::sanitize;
use llmtest_grade::Outcome;
use llmtest_spec::SnapshotMode;

use crate::results::CaseResult;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct SnapshotDoc {
    pub suite: String,
    pub model: String,
    pub passed: String,
    pub cases: Vec<SnapCase>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct SnapCase {
    pub id: String,
    pub outcome: Outcome,
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extracted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "is_none_str")]
    pub reasoning: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertions: Vec<SnapAssertion>,
    /// Per-sample outcomes when the case has several samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Outcome>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pass_at_k: BTreeMap<String, f64>,
}

fn is_none_str(s: &str) -> bool {
    s == "none"
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct SnapAssertion {
    #[serde(rename = "type")]
    pub kind: String,
    pub pass: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extracted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The snapshot content of one suite × model. Infrastructure errors and skips have no
/// place in a snapshot (they say nothing about the model): the caller refuses to snapshot
/// such a run.
pub(crate) fn build(
    suite: &str,
    model: &str,
    mode: SnapshotMode,
    cases: &[&CaseResult],
) -> SnapshotDoc {
    let mut out = Vec::new();
    let mut passed = 0;
    for c in cases {
        if c.outcome == Outcome::Pass {
            passed += 1;
        }
        let first = c.samples.first();
        let case_extracted = first.and_then(|s| s.extracted.clone());
        out.push(SnapCase {
            id: c.case.clone(),
            outcome: c.outcome,
            score: round4(c.score),
            extracted: case_extracted.clone(),
            answer: if mode == SnapshotMode::Output {
                first.map(|s| s.answer.clone())
            } else {
                None
            },
            reasoning: first
                .map(|s| s.reasoning_status.clone())
                .unwrap_or_else(|| "none".into()),
            assertions: first
                .map(|s| {
                    s.assertions
                        .iter()
                        .map(|a| SnapAssertion {
                            kind: a.kind.clone(),
                            pass: a.pass,
                            // The case line already shows the first extracted value.
                            extracted: a
                                .extracted
                                .clone()
                                .filter(|e| Some(e) != case_extracted.as_ref()),
                            outcome: a.outcome,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            samples: if c.samples.len() > 1 {
                c.samples.iter().map(|s| s.outcome).collect()
            } else {
                Vec::new()
            },
            pass_at_k: c
                .pass_at_k
                .iter()
                .map(|(k, v)| (k.clone(), round4(*v)))
                .collect(),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    SnapshotDoc {
        suite: suite.to_owned(),
        model: model.to_owned(),
        passed: format!("{passed}/{}", cases.len()),
        cases: out,
    }
}

/// The snapshot's name: `<suite>@<model>`.
pub(crate) fn name(suite: &str, model: &str) -> String {
    format!("{}@{}", sanitize(suite), sanitize(model))
}

pub(crate) fn path(dir: &Path, suite: &str, model: &str) -> PathBuf {
    dir.join(format!("{}.snap", name(suite, model)))
}

/// Asserts the snapshot with insta (panics with insta's diff when it differs).
pub(crate) fn assert(dir: &Path, suite_file: &Path, doc: &SnapshotDoc) {
    let mut settings = insta::Settings::clone_current();
    settings.set_input_file(suite_file);
    settings.set_snapshot_path(dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(format!(
        "llmtest results of suite `{}` on model `{}`",
        doc.suite, doc.model
    ));
    let snap_name = name(&doc.suite, &doc.model);
    settings.bind(|| {
        insta::assert_yaml_snapshot!(snap_name, doc);
    });
}

/// The committed snapshot's recorded outcome for each case, if the file exists and parses.
pub(crate) fn recorded_outcomes(
    dir: &Path,
    suite: &str,
    model: &str,
) -> Option<BTreeMap<String, Outcome>> {
    let text = std::fs::read_to_string(path(dir, suite, model)).ok()?;
    // An insta file: a `---`-delimited header, then the YAML body.
    let body = text
        .strip_prefix("---\n")
        .and_then(|r| r.split_once("\n---\n"))
        .map(|(_, b)| b)?;
    // Only ids and outcomes: the rest of each case is skipped, not built.
    #[derive(Deserialize)]
    struct Outcomes {
        cases: Vec<IdOutcome>,
    }
    #[derive(Deserialize)]
    struct IdOutcome {
        id: String,
        outcome: Outcome,
    }
    let doc: Outcomes = serde_saphyr::from_str(body).ok()?;
    Some(doc.cases.into_iter().map(|c| (c.id, c.outcome)).collect())
}
