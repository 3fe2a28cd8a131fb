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

use llmtest_backend::filecache::{self, Derived};
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

/// The committed snapshot's recorded outcome for each case (of `wanted`, when given), if the
/// file exists and parses. With `cache` (a directory), the outcomes are kept there, beside a
/// stamp and the hash of the snapshot they came from, and read back while the snapshot is
/// unchanged: a process that runs one trial finds its case's line without parsing the YAML.
pub(crate) fn recorded_outcomes(
    dir: &Path,
    suite: &str,
    model: &str,
    cache: Option<&Path>,
    wanted: Option<&[&str]>,
) -> Option<BTreeMap<String, Outcome>> {
    let path = path(dir, suite, model);
    let parsed = |text: &str| {
        let mut all = parse_outcomes(text)?;
        all.retain(|id, _| wanted.is_none_or(|w| w.contains(&id.as_str())));
        Some(all)
    };
    let Some(cache) = cache else {
        return parsed(&std::fs::read_to_string(&path).ok()?);
    };
    let entry = cache.join(filecache::entry_name(&path, "outcomes"));
    // The entry: a line `<outcome> <id as JSON>` per case (none for a snapshot that does not
    // parse: it is read again each time).
    let build = |text: &str| {
        let mut lines = String::new();
        for (id, o) in parse_outcomes(text)? {
            let o = serde_json::to_value(o).ok()?;
            lines.push_str(&format!(
                "{} {}\n",
                o.as_str()?,
                serde_json::Value::from(id)
            ));
        }
        Some(lines.into_bytes())
    };
    match filecache::derived(OUTCOMES_KIND, &path, &entry, build)? {
        Derived::Cached(body) => read_outcome_lines(&String::from_utf8(body).ok()?, wanted),
        Derived::Read(text) => parsed(&text),
    }
}

const OUTCOMES_KIND: &str = "llmtest-snapshot-outcomes/2";

fn read_outcome_lines(lines: &str, wanted: Option<&[&str]>) -> Option<BTreeMap<String, Outcome>> {
    let needles: Option<Vec<String>> = wanted.map(|w| {
        w.iter()
            .map(|id| serde_json::Value::from(*id).to_string())
            .collect()
    });
    let mut out = BTreeMap::new();
    for line in lines.lines() {
        let (o, id) = line.split_once(' ')?;
        if needles.as_ref().is_some_and(|n| !n.iter().any(|x| x == id)) {
            continue;
        }
        let o: Outcome = serde_json::from_value(serde_json::Value::from(o)).ok()?;
        out.insert(serde_json::from_str(id).ok()?, o);
    }
    Some(out)
}

fn parse_outcomes(text: &str) -> Option<BTreeMap<String, Outcome>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(dir: &Path, outcome: &str) {
        std::fs::write(
            path(dir, "s", "m"),
            format!("---\nsource: x\n---\nsuite: s\nmodel: m\npassed: 0/2\ncases:\n  - id: a\n    outcome: {outcome}\n    score: 0\n  - id: b\n    outcome: pass\n    score: 1\n"),
        )
        .unwrap();
        // A new modification time even on a coarse clock.
        let t = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(path(dir, "s", "m"))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn recorded_outcomes_are_cached_and_follow_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let d = dir.path();
        snap(d, "fail");
        let direct = recorded_outcomes(d, "s", "m", None, None).unwrap();
        assert_eq!(direct["a"], Outcome::Fail);
        assert_eq!(
            recorded_outcomes(d, "s", "m", Some(&cache), None).unwrap(),
            direct
        );
        let idx = std::fs::read_dir(&cache)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert_eq!(
            recorded_outcomes(d, "s", "m", Some(&cache), None).unwrap(),
            direct
        );
        // An updated snapshot is seen by the next process.
        snap(d, "code_error");
        let now = recorded_outcomes(d, "s", "m", Some(&cache), None).unwrap();
        assert_eq!(now["a"], Outcome::CodeError);
        let one = recorded_outcomes(d, "s", "m", Some(&cache), Some(&["b"])).unwrap();
        assert_eq!(one, BTreeMap::from([("b".to_owned(), Outcome::Pass)]));
        assert_eq!(
            recorded_outcomes(d, "s", "m", None, Some(&["b"])).unwrap(),
            one
        );
        // A corrupt index, or a well-formed one of another snapshot, is ignored and rebuilt.
        let good = std::fs::read(&idx).unwrap();
        let other = tempfile::tempdir().unwrap();
        snap(other.path(), "pass");
        let other_cache = other.path().join("cache");
        recorded_outcomes(other.path(), "s", "m", Some(&other_cache), None).unwrap();
        let foreign = std::fs::read_dir(&other_cache)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        for bad in [
            b"junk".to_vec(),
            good[..good.len() - 3].to_vec(),
            std::fs::read(foreign).unwrap(),
        ] {
            std::fs::write(&idx, bad).unwrap();
            assert_eq!(
                recorded_outcomes(d, "s", "m", Some(&cache), None).unwrap()["a"],
                Outcome::CodeError
            );
            assert_eq!(std::fs::read(&idx).unwrap(), good);
        }
    }
}
