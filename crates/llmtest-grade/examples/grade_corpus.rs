//! Grades a labelled corpus with llmtest's `math` and `number` graders, for
//! `ci/math_corpus.py`.
//!
//! Reads JSON lines `{"id", "grader": "math"|"number", "gold", "answer", …}` (number pairs may
//! add `unit`, `tolerance` and `pick`) from the files given as arguments and writes one JSON
//! line per pair to stdout: `{"id", "pass", "extracted", "found", "nanos"}`, where `nanos`
//! is the time to build the grader from the gold and grade the answer.
//!
//! ```text
//! cargo run --release -p llmtest-grade --example grade_corpus -- fixtures/math-corpus/pairs.jsonl
//! ```

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::time::Instant;

use llmtest_grade::math::MathGrader;
use llmtest_grade::number::NumberGrader;
use serde_json::{Map, Value, json};

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: grade_corpus FILE.jsonl…");
        return ExitCode::from(2);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &paths {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("cannot open {path}: {e}");
                return ExitCode::from(2);
            }
        };
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{path}:{}: {e}", n + 1);
                    return ExitCode::from(2);
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let pair: Map<String, Value> = match serde_json::from_str(&line) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{path}:{}: invalid JSON: {e}", n + 1);
                    return ExitCode::from(2);
                }
            };
            let text = |k: &str| {
                pair.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let answer = text("answer");
            let start = Instant::now();
            let graded = match text("grader").as_str() {
                "number" => {
                    let mut params = Map::new();
                    params.insert("value".into(), Value::String(text("gold")));
                    for k in ["unit", "tolerance", "pick"] {
                        if let Some(v) = pair.get(k) {
                            params.insert(k.into(), v.clone());
                        }
                    }
                    NumberGrader::from_params(&params).map(|g| g.grade_answer(&answer))
                }
                _ => MathGrader::new(&text("gold"), true).map(|g| g.grade_answer(&answer)),
            };
            let nanos = start.elapsed().as_nanos() as u64;
            let row = match graded {
                Ok(g) => {
                    json!({"id": pair.get("id"), "pass": g.pass, "extracted": g.extracted, "found": g.found, "nanos": nanos})
                }
                Err(e) => {
                    json!({"id": pair.get("id"), "pass": false, "error": e.message, "nanos": nanos})
                }
            };
            if writeln!(out, "{row}").is_err() {
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
