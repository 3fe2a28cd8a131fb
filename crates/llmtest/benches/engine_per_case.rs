//! What the engine costs per case when the backend costs nothing: 10,000 cases of one
//! `cases_from` suite, answered in-process by the `outputs` backend and graded by three
//! assertions each (`contains`, `not-contains`, `regex`), every result kept. No network and
//! no child process: the figure is the engine's own work per case (scheduling, the request,
//! the generation lookup, grading on the blocking pool, the result).
//!
//!     cargo bench -p llmtest --bench engine_per_case
//!
//! Prints the start-up (load, plan, backends) and the median of five `Engine::run_all` runs,
//! each on a fresh engine, in µs per case.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use llmtest::{Engine, Llmtest, Plan, PlanOptions};

const N: usize = 10_000;
const RUNS: usize = 5;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("suites/data")).unwrap();
    std::fs::write(
        root.join("llmtest.yaml"),
        "version: 1\nmodels:\n  m: {backend: outputs, path: answers.jsonl, max_concurrency: 8}\n",
    )
    .unwrap();
    let (mut rows, mut answers) = (String::new(), String::new());
    for i in 0..N {
        let _ = writeln!(
            rows,
            "{{\"q\": \"What is {i} plus one?\", \"a\": {}}}",
            i + 1
        );
        let _ = writeln!(
            answers,
            "{{\"case\": \"c{i}\", \"output\": \"The answer is {}.\"}}",
            i + 1
        );
    }
    std::fs::write(root.join("suites/data/rows.jsonl"), rows).unwrap();
    std::fs::write(root.join("answers.jsonl"), answers).unwrap();
    std::fs::write(
        root.join("suites/bench.yaml"),
        "version: 1\nsuite: bench\nsnapshot: off\ncases_from:\n  - path: data/rows.jsonl\n    id: \"c{{ index }}\"\n    prompt: \"{{ q }}\"\n    expect:\n      - {type: contains, value: \"{{ a }}\"}\n      - {type: not-contains, value: error}\n      - {type: regex, value: \"answer is [0-9]+\"}\n",
    )
    .unwrap();

    let lt = Llmtest::new().root(root);
    let models = ["m".to_string()];
    let t = Instant::now();
    let registry = Arc::new(lt.grader_registry(root));
    let plan = Plan::load(root, &registry, &PlanOptions::default()).expect("plan loads");
    let startup = t.elapsed().as_secs_f64();
    assert_eq!(plan.work.len(), N);
    let mut per_case = Vec::with_capacity(RUNS);
    let mut keep = Vec::new();
    for _ in 0..RUNS {
        let engine =
            Arc::new(Engine::new(&plan, &models, &lt.backend_factories()).expect("engine"));
        let t = Instant::now();
        let results = engine.run_all(&plan.work);
        per_case.push(t.elapsed().as_secs_f64() / N as f64 * 1e6);
        let passed = results
            .iter()
            .filter(|r| r.outcome == llmtest::grade::Outcome::Pass)
            .count();
        assert_eq!(passed, N, "every case passes: the answers were graded");
        engine.shutdown();
        // Tasks of the engine's runtime still hold it; it must not be dropped from one of them.
        keep.push(engine);
    }
    per_case.sort_by(|a, b| a.total_cmp(b));
    println!(
        "engine_per_case: {N} cases, 3 assertions each, outputs backend: load + plan {:.1} ms, run {:.2} µs per case (median of {RUNS}; min {:.2}, max {:.2})",
        startup * 1e3,
        per_case[RUNS / 2],
        per_case[0],
        per_case[RUNS - 1]
    );
}
