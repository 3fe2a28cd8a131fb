//! HumanEval end to end through the suite loader and the `code` grader (not the runner):
//! the canonical solutions pass 164/164, the broken answer sets 0/164 with the right
//! outcome kinds, in chat mode (`prompt` parameter) and completion mode (the case prompt).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use llmtest_grade::{Grade, Grader, Outcome};
use llmtest_spec::{Case, Suite};

use common::{answers, load, registry};

/// Grades every case of `suite` with the answer set, many cases at once (the grader bounds
/// the executions to the core count), optionally overriding the code assertion's params.
fn grade_all(suite: &Suite, set: &str, overrides: &[(&str, Value)]) -> Vec<(String, Grade)> {
    let answers = answers(set);
    let reg = registry();
    let jobs: Vec<(&Case, Arc<dyn Grader>)> = suite
        .cases
        .iter()
        .map(|c| {
            assert_eq!(c.expect.len(), 1, "{}: one code assertion", c.id);
            let mut spec = c.expect[0].clone();
            for (k, v) in overrides {
                spec.params.insert((*k).to_owned(), v.clone());
            }
            (
                c,
                reg.build(&spec)
                    .unwrap_or_else(|e| panic!("{}: {}", c.id, e.message)),
            )
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((case, g)) = jobs.get(i) else { break };
                    let answer = answers
                        .get(&case.id)
                        .unwrap_or_else(|| panic!("no answer for {}", case.id));
                    let grade = common::grade_with(&**g, case, answer);
                    results.lock().unwrap().push((case.id.clone(), grade));
                }
            });
        }
    });
    let mut r = results.into_inner().unwrap();
    r.sort_by(|a, b| a.0.cmp(&b.0));
    r
}

fn tally(results: &[(String, Grade)]) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for (_, g) in results {
        let key = format!(
            "{}/{}",
            g.outcome
                .map(|o| o.as_str())
                .unwrap_or(if g.pass { "pass" } else { "fail" }),
            common::kind(g)
        );
        *t.entry(key).or_default() += 1;
    }
    t
}

#[test]
fn canonical_solutions_pass_in_chat_and_completion_mode() {
    if !common::have("python3") {
        return;
    }
    for file in [
        "suites/code/humaneval.yaml",
        "suites/code/humaneval-completion.yaml",
    ] {
        let suite = load(file);
        assert_eq!(suite.cases.len(), 164, "{file}");
        let t = Instant::now();
        let results = grade_all(&suite, "humaneval-canonical.jsonl", &[]);
        let failed: Vec<String> = results
            .iter()
            .filter(|(_, g)| !g.pass)
            .map(|(id, g)| format!("{id}: {}", g.found))
            .collect();
        eprintln!(
            "{file}: {} of 164 passed in {:.1?} ({:?})",
            164 - failed.len(),
            t.elapsed(),
            tally(&results)
        );
        assert!(
            failed.is_empty(),
            "{file}: canonical solutions failed:\n{}",
            failed.join("\n")
        );
        assert!(
            results
                .iter()
                .all(|(_, g)| g.score == 1.0 && g.extracted.as_deref() == Some("passed"))
        );
    }
}

#[test]
fn return_none_answers_all_fail_as_wrong_answers_or_runtime_errors() {
    if !common::have("python3") {
        return;
    }
    let suite = load("suites/code/humaneval.yaml");
    let results = grade_all(&suite, "humaneval-broken-return-none.jsonl", &[]);
    let t = tally(&results);
    eprintln!("return None: {t:?}");
    assert_eq!(results.len(), 164);
    for (id, g) in &results {
        assert!(!g.pass, "{id} passed with `return None`");
        match (g.outcome, common::kind(g)) {
            (None, "wrong_answer") => {
                assert!(g.found.starts_with("wrong answer"), "{id}: {}", g.found)
            }
            (Some(Outcome::CodeError), "runtime_error") => {
                assert!(g.found.contains("Error"), "{id}: {}", g.found)
            }
            other => panic!("{id}: unexpected outcome {other:?}: {}", g.found),
        }
    }
    // Most are plain wrong answers; a None in arithmetic is a runtime error (TypeError).
    assert!(
        t.get("fail/wrong_answer").copied().unwrap_or(0) > 100,
        "{t:?}"
    );
    assert!(
        t.get("code_error/runtime_error").copied().unwrap_or(0) > 0,
        "{t:?}"
    );
}

#[test]
fn infinite_loop_answers_all_time_out() {
    if !common::have("python3") {
        return;
    }
    let suite = load("suites/code/humaneval.yaml");
    // A short limit keeps this test fast; the suite's own limit is what users run with.
    let t = Instant::now();
    let results = grade_all(
        &suite,
        "humaneval-broken-infinite-loop.jsonl",
        &[("timeout", Value::from(0.3))],
    );
    eprintln!("while True: {:?} in {:.1?}", tally(&results), t.elapsed());
    for (id, g) in &results {
        assert!(!g.pass, "{id}");
        assert_eq!(g.outcome, Some(Outcome::CodeTimeout), "{id}: {}", g.found);
        assert_eq!(common::kind(g), "timeout", "{id}: {}", g.found);
        assert!(
            g.found.contains("timed out after 0.3 s"),
            "{id}: {}",
            g.found
        );
    }
    assert_eq!(results.len(), 164);
}
