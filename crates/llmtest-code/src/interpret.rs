//! Reading the harness's result lines (HumanEval and function I/O styles) into a verdict.

use serde_json::{Value, json};

use crate::compare::{equal, show, truncate};
use crate::params::{CodeGrader, Style};
use crate::sandbox::{Exit, Output};
use crate::verdict::{Kind, Verdict, exit_text, last_line, resource_kind, tail};

impl CodeGrader {
    pub(crate) fn interpret(&self, out: &Output, lines: &[Value]) -> Verdict {
        let done = lines
            .iter()
            .any(|l| l.get("done") == Some(&Value::Bool(true)));
        // Whole-program events; per-case lines (function I/O) carry a `case` key.
        let status = lines
            .iter()
            .filter(|l| l.get("case").is_none())
            .find_map(|l| {
                l.get("status")
                    .and_then(Value::as_str)
                    .and_then(Kind::from_harness)
                    .map(|k| (k, l))
            });
        let stderr_tail = Some(tail(&out.stderr, 12));
        // Per-case results (function I/O).
        let mut passed = 0;
        let mut tests = Vec::new();
        let mut first_bad: Option<(Kind, String)> = None;
        if let Style::Call {
            call,
            cases,
            tolerance,
        } = &self.style
        {
            for (i, c) in cases.iter().enumerate() {
                let line = lines
                    .iter()
                    .find(|l| l.get("case").and_then(Value::as_u64) == Some(i as u64));
                let call_text = format!(
                    "{call}({})",
                    c.args
                        .iter()
                        .map(|a| show(a, 80))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let (kind, msg): (Kind, String) = match line {
                    None => continue,
                    Some(l) => match l.get("value") {
                        Some(v) if equal(&c.expect, v, *tolerance) => (Kind::Passed, String::new()),
                        Some(v) => (
                            Kind::WrongAnswer,
                            format!(
                                "{call_text} returned {}, expected {}",
                                show(v, 200),
                                show(&c.expect, 200)
                            ),
                        ),
                        None => {
                            let k = match l.get("status").and_then(Value::as_str) {
                                Some("memory_limit") => Kind::MemoryLimit,
                                Some("early_exit") => Kind::EarlyExit,
                                _ => Kind::RuntimeError,
                            };
                            (
                                k,
                                format!(
                                    "{call_text} raised {}",
                                    l.get("message")
                                        .and_then(Value::as_str)
                                        .unwrap_or("an error")
                                ),
                            )
                        }
                    },
                };
                if kind == Kind::Passed {
                    passed += 1;
                    tests.push(json!({"test": i + 1, "pass": true}));
                } else {
                    tests.push(json!({"test": i + 1, "pass": false, "kind": kind, "message": msg}));
                    if first_bad
                        .as_ref()
                        .is_none_or(|(k, _)| kind.severity() > k.severity())
                    {
                        first_bad = Some((kind, format!("test {}/{}: {msg}", i + 1, cases.len())));
                    }
                }
            }
        }
        let total = self.total();
        let progress = |p: usize| {
            if matches!(self.style, Style::Call { .. }) {
                format!(" ({p} of {total} tests passed before)")
            } else {
                String::new()
            }
        };
        let mk = |kind: Kind, passed: usize, found: String, tests: Vec<Value>| Verdict {
            kind,
            passed,
            found,
            tests,
            stderr: stderr_tail.clone(),
        };
        if let Some((kind, msg)) = resource_kind(out, self.limits.wall, self.limits.cpu_s) {
            return mk(kind, passed, format!("{msg}{}", progress(passed)), tests);
        }
        if let Some((s, l)) = status {
            let message = l
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let at = l
                .get("solution_line")
                .and_then(Value::as_u64)
                .map(|n| format!(" (solution line {n})"))
                .unwrap_or_default();
            match s {
                Kind::Passed => {
                    return mk(Kind::Passed, 1, "passed the test's check()".into(), tests);
                }
                Kind::WrongAnswer => {
                    let line_no = l.get("test_line").and_then(Value::as_u64);
                    let src = match (&self.style, line_no) {
                        (Style::HumanEval { test, .. }, Some(n)) => test
                            .lines()
                            .nth(n as usize - 1)
                            .map(|t| t.trim().to_string()),
                        _ => None,
                    };
                    let mut found = match (line_no, src) {
                        (Some(n), Some(src)) => format!(
                            "wrong answer: test line {n} failed: {}",
                            truncate(&src, 300)
                        ),
                        (Some(n), None) => format!("wrong answer: test line {n} failed"),
                        _ => "wrong answer: an assertion of the test failed".to_string(),
                    };
                    if !message.is_empty() {
                        found.push_str(&format!(" ({})", truncate(&message, 200)));
                    }
                    return mk(Kind::WrongAnswer, 0, found, tests);
                }
                Kind::CompileError => {
                    return mk(
                        Kind::CompileError,
                        0,
                        format!("compile error: {message}"),
                        tests,
                    );
                }
                Kind::MemoryLimit => {
                    return mk(
                        Kind::MemoryLimit,
                        passed,
                        format!(
                            "memory limit ({} MiB) exceeded: {message}{at}",
                            self.memory_mb
                        ),
                        tests,
                    );
                }
                Kind::EarlyExit => {
                    return mk(
                        Kind::EarlyExit,
                        passed,
                        format!("the program exited before its tests finished: {message}{at}"),
                        tests,
                    );
                }
                Kind::MissingFunction => return mk(Kind::MissingFunction, 0, message, tests),
                Kind::TestError => {
                    return mk(
                        Kind::TestError,
                        0,
                        format!(
                            "the suite's test program failed (not the model's fault): {message}"
                        ),
                        tests,
                    );
                }
                Kind::RuntimeError => {
                    let phase = match l.get("phase").and_then(Value::as_str) {
                        Some("load") => "while loading the code",
                        _ => "during the test",
                    };
                    return mk(
                        Kind::RuntimeError,
                        passed,
                        format!("runtime error {phase}: {message}{at}"),
                        tests,
                    );
                }
                _ => {}
            }
        }
        if !done {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("MemoryError") {
                return mk(
                    Kind::MemoryLimit,
                    passed,
                    format!(
                        "memory limit ({} MiB) exceeded: {}",
                        self.memory_mb,
                        last_line(&out.stderr)
                    ),
                    tests,
                );
            }
            return match out.exit {
                Exit::Code(0) => mk(
                    Kind::EarlyExit,
                    passed,
                    format!(
                        "the program exited with status 0 before its tests finished{}",
                        progress(passed)
                    ),
                    tests,
                ),
                e => mk(
                    Kind::RuntimeError,
                    passed,
                    format!(
                        "{}: {}{}",
                        exit_text(e),
                        last_line(&out.stderr),
                        progress(passed)
                    ),
                    tests,
                ),
            };
        }
        match first_bad {
            None => mk(
                Kind::Passed,
                passed,
                format!("all {passed} tests passed"),
                tests,
            ),
            Some((kind, found)) => mk(kind, passed, found, tests),
        }
    }
}
