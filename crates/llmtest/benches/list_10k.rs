//! How long listing a 10,000-case suite takes (`--list`: load, validate, render every prompt,
//! build and sort the trial names), for inline cases and for a `cases_from` import.
//! Run: `cargo bench -p llmtest --bench list_10k`. Prints the median of several runs and the
//! ratio to a one-second budget.

use std::fmt::Write as _;
use std::time::Instant;

use llmtest::grade::{GraderContext, GraderRegistry};
use llmtest::{Plan, PlanOptions};

const N: usize = 10_000;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("suites/inline")).unwrap();
    std::fs::create_dir_all(root.join("suites/imported/data")).unwrap();
    std::fs::write(
        root.join("llmtest.yaml"),
        "version: 1\nmodels:\n  m: {backend: exec, command: [cat]}\n",
    )
    .unwrap();

    let mut inline = String::from(
        "version: 1\nsuite: inline\ndefaults:\n  system: Answer with a number.\ncases:\n",
    );
    for i in 0..N {
        let _ = write!(
            inline,
            "  - id: case-{i:05}\n    prompt: \"What is {i} + {i}?\"\n    expect:\n      - {{type: contains, value: \"{}\"}}\n      - {{type: regex, value: \"\\\\d+\"}}\n",
            2 * i
        );
    }
    std::fs::write(root.join("suites/inline/inline.yaml"), inline).unwrap();

    let mut rows = String::new();
    for i in 0..N {
        let _ = writeln!(
            rows,
            "{{\"question\": \"What is {i} + {i}?\", \"answer\": \"#### {}\"}}",
            2 * i
        );
    }
    std::fs::write(root.join("suites/imported/data/rows.jsonl"), rows).unwrap();
    std::fs::write(
        root.join("suites/imported/imported.yaml"),
        "version: 1\nsuite: imported\ncases_from:\n  - path: data/rows.jsonl\n    prompt: \"Q: {{ question }}\"\n    vars: {target: \"{{ (answer | split('####'))[1] | trim }}\"}\n    expect: [{type: contains, value: \"{{ target }}\"}]\n",
    )
    .unwrap();

    for (label, path) in [
        ("inline cases", "suites/inline"),
        ("cases_from import", "suites/imported"),
    ] {
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..5 {
            let t0 = Instant::now();
            let registry = GraderRegistry::with_builtins(GraderContext {
                root: root.to_path_buf(),
            });
            let opts = PlanOptions {
                paths: vec![path.into()],
                ..PlanOptions::default()
            };
            let plan = Plan::load(root, &registry, &opts).expect("plan loads");
            let names: Vec<String> = plan.work.iter().map(|w| w.name()).collect();
            count = names.len();
            times.push(t0.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "list {count} items ({label}): median {:.1} ms over {} runs = {:.3} of a 1 s budget",
            median * 1e3,
            times.len(),
            median
        );
    }
}
