//! llmtest's `code` assertion: the code in an answer is extracted, run in a sandbox against
//! tests, and graded by what it does.
//!
//! ```no_run
//! use llmtest_grade::{GraderContext, GraderRegistry};
//! let mut registry = GraderRegistry::with_builtins(GraderContext::default());
//! for f in llmtest_code::factories() {
//!     registry.register(f);
//! }
//! assert!(registry.kinds().any(|k| k == "code"));
//! // The sandbox this machine allows (network namespace, read-only file system, …):
//! println!("{}", llmtest_code::isolation().describe());
//! ```
//!
//! In a suite, one of three test styles:
//!
//! ```yaml
//! expect:
//!   # 1. HumanEval: a test program defining check(candidate), and the function to pass it.
//!   - {type: code, test: "{{ test }}", entry_point: "{{ entry_point }}", prompt: "{{ prompt }}"}
//!   # 2. Function I/O: call a function with arguments, compare with the expected value.
//!   - type: code
//!     call: two_sum_unique_pairs
//!     cases:
//!       - {args: [[3, 1, 2, 3], 4], expect: [[0, 3], [1, 2]]}
//!     float_tolerance: 1e-9        # relative; 0 for exact (default 1e-9)
//!   # 3. A program reading stdin and writing stdout.
//!   - type: code
//!     io: [{stdin: "1 2\n", stdout: "3\n"}]
//!     whitespace: lines            # exact | lines (default) | tokens
//! ```
//!
//! Parameters common to all styles, with their defaults:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `language` | `python` | `python`, `javascript`, `rust`, or any name with a `runner` (see [`RunnerDef`]) |
//! | `runner` | built-in | your own compile/run commands |
//! | `prompt` | completion suites: the case prompt | code the answer continues (HumanEval's `prompt`) |
//! | `partial_credit` | true | score = fraction of tests passed; false: 1 or 0 (a per-problem pass rate) |
//! | `timeout` | 10 | wall-clock seconds per program run (the whole process tree is killed) |
//! | `cpu` | `ceil(timeout)` | CPU seconds |
//! | `memory_mb` | 1024 | address space (or the runtime's heap flag) |
//! | `output_kb` | 1024 | stdout and stderr kept each; a program writing more is killed |
//! | `processes` | 32 | processes and threads |
//! | `open_files` | 64 | file descriptors |
//! | `file_size_mb` | 16 | largest file written |
//!
//! Outcomes: a pass; a wrong answer (plain failure: which test, expected vs got); a runtime
//! error, compile error, memory limit, output limit or early exit (`code_error`, the kind in
//! the detail); a timeout or CPU limit (`code_timeout`); a sandbox failure (`infra_error`,
//! never counted against the model). The score is the fraction of tests passed.
//! See [`extract`] for how code is found in an answer and [`sandbox`] for the isolation.
//!
//! Trusting the result: the harness (HumanEval and function I/O styles) is two processes.
//! The judge reads the test and a fresh secret token (deleting both from disk), runs the
//! test and writes the result lines, marked with the token; the candidate, forked before
//! the judge read anything, loads the program and serves calls to its functions. Arguments
//! and return values cross a pipe as tagged JSON that the judge decodes into plain values
//! only (numbers, strings, bytes, lists, tuples, dicts, sets, `Fraction`, `Decimal`,
//! `Counter`, `OrderedDict`, `deque`, ranges; iterators arrive as iterators over their
//! items; anything else as an opaque value equal only to itself). So nothing the program
//! does in its interpreter reaches the code that reports: walking frames, scanning the heap,
//! patching builtins or `json`, writing "passed" into the result file or every descriptor
//! it finds (lines without the token are ignored) — and an object equal to everything is
//! compared as what it holds, not with its own `__eq__`. The judge is not dumpable, so the
//! program cannot ptrace it or read its memory; killing it only fails the program.
//!
//! HumanEval semantics kept across the boundary: the test's `check(candidate)` calls the
//! program's function; lists, dicts, sets and bytearrays the function changes in place are
//! changed in the test too; callables pass both ways (a test's `key=` lambda, a returned
//! closure) and are called back where they live; builtin exceptions (`ValueError`, …) are
//! raised again in the test as the same type, and the program's own exception classes as
//! `CandidateError`; the program's top-level functions are visible to the test
//! (HumanEval/38's check calls `encode_cyclic`). Not served: objects of the program's own
//! classes (they reach the test opaque, so only identity comparisons hold) and attributes
//! set on the function. The JavaScript harness still runs the program in the judge's own
//! interpreter (token-marked lines, but no process boundary).

mod compare;
pub mod extract;
mod runner;
pub mod sandbox;
mod zygote;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use llmtest_grade::{Grade, Grader, GraderContext, GraderFactory, Outcome, Sample, parse_params};
use llmtest_spec::{CheckError, Prompt};

pub use extract::Extracted;
pub use runner::RunnerDef;
pub use sandbox::{Isolation, SANDBOX_PATH, isolation};

use compare::{equal, show, truncate};
use extract::Syntax;
use runner::Harness;
use sandbox::{Exit, Limits, Output};

/// The assertion types of this crate (`code`), for the grader registry.
pub fn factories() -> Vec<Arc<dyn GraderFactory>> {
    vec![Arc::new(CodeFactory)]
}

/// Builds `code` graders.
pub struct CodeFactory;

impl GraderFactory for CodeFactory {
    fn kind(&self) -> &str {
        "code"
    }

    fn build(
        &self,
        params: &Map<String, Value>,
        _ctx: &GraderContext,
    ) -> Result<Arc<dyn Grader>, CheckError> {
        let p: Params = parse_params(params)?;
        Ok(Arc::new(CodeGrader::new(p)?))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    runner: Option<RunnerDef>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    partial_credit: Option<bool>,
    // HumanEval style
    #[serde(default)]
    test: Option<String>,
    #[serde(default)]
    entry_point: Option<String>,
    // function I/O
    #[serde(default)]
    call: Option<String>,
    #[serde(default)]
    cases: Option<Vec<CallCase>>,
    #[serde(default)]
    float_tolerance: Option<f64>,
    // stdin/stdout
    #[serde(default)]
    io: Option<Vec<IoCase>>,
    #[serde(default)]
    whitespace: Option<Whitespace>,
    // limits
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    cpu: Option<u64>,
    #[serde(default)]
    memory_mb: Option<u64>,
    #[serde(default)]
    output_kb: Option<u64>,
    #[serde(default)]
    processes: Option<u64>,
    #[serde(default)]
    open_files: Option<u64>,
    #[serde(default)]
    file_size_mb: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct CallCase {
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    kwargs: Map<String, Value>,
    #[serde(skip_serializing)]
    expect: Value,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IoCase {
    #[serde(default)]
    stdin: String,
    stdout: String,
}

/// How stdout is compared with the expected output.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Whitespace {
    /// Byte for byte.
    Exact,
    /// Trailing spaces of each line, `\r` and trailing blank lines are ignored.
    #[default]
    Lines,
    /// Any run of whitespace equals any other (token by token).
    Tokens,
}

impl Whitespace {
    fn normalize(self, s: &str) -> String {
        match self {
            Whitespace::Exact => s.to_string(),
            Whitespace::Lines => {
                let lines: Vec<&str> = s.lines().map(|l| l.trim_end()).collect();
                let end = lines
                    .iter()
                    .rposition(|l| !l.is_empty())
                    .map(|i| i + 1)
                    .unwrap_or(0);
                lines[..end].join("\n")
            }
            Whitespace::Tokens => s.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}

#[derive(Debug)]
enum Style {
    HumanEval {
        test: String,
        entry_point: String,
    },
    Call {
        call: String,
        cases: Vec<CallCase>,
        tolerance: f64,
    },
    Io {
        io: Vec<IoCase>,
        whitespace: Whitespace,
    },
}

/// Grades one answer by running its code. See the crate docs for the parameters.
pub struct CodeGrader {
    language: String,
    runner: RunnerDef,
    harness: Harness,
    syntax: Syntax,
    style: Style,
    prompt: Option<String>,
    limits: Limits,
    compile_limits: Limits,
    memory_mb: u64,
    partial_credit: bool,
    /// Fork executions from a warm interpreter (built-in Python runner, harness styles).
    warm: bool,
}

impl CodeGrader {
    fn new(p: Params) -> Result<CodeGrader, CheckError> {
        let language = runner::canonical_language(p.language.as_deref().unwrap_or("python"));
        let runner = match (&p.runner, runner::builtin(&language)) {
            (Some(r), _) => r.clone(),
            (None, Some(b)) => b,
            (None, None) => {
                return Err(CheckError::new(format!(
                    "no built-in runner for language `{language}`"
                ))
                .with_hint(format!(
                    "built-in: {}; or give `runner: {{file, run, compile}}`",
                    runner::BUILTIN.join(", ")
                )));
            }
        };
        if runner.run.is_empty() {
            return Err(CheckError::new("`runner.run` is empty")
                .with_hint("e.g. `run: [python3, \"{file}\"]`"));
        }
        if runner.file.is_empty() || runner.file.contains('/') || runner.file.starts_with('.') {
            return Err(CheckError::new(format!(
                "`runner.file` must be a plain file name, not `{}`",
                runner.file
            )));
        }
        let harness = runner::harness_of(&language);
        let style = match (&p.test, &p.call, &p.io) {
            (Some(test), None, None) => {
                let Some(entry_point) = p.entry_point.clone().filter(|e| !e.trim().is_empty())
                else {
                    return Err(CheckError::new("`test` needs `entry_point`")
                        .with_hint("the function the test's check(candidate) receives"));
                };
                Style::HumanEval {
                    test: test.clone(),
                    entry_point: entry_point.trim().to_string(),
                }
            }
            (None, Some(call), None) => {
                let Some(cases) = p.cases.clone().filter(|c| !c.is_empty()) else {
                    return Err(CheckError::new("`call` needs `cases`").with_hint(
                        "e.g. `cases: [{args: [[3, 1, 2, 3], 4], expect: [[0, 3], [1, 2]]}]`",
                    ));
                };
                let tolerance = p.float_tolerance.unwrap_or(1e-9);
                if !(tolerance.is_finite() && tolerance >= 0.0) {
                    return Err(CheckError::new("`float_tolerance` must be a number ≥ 0"));
                }
                Style::Call {
                    call: call.trim().to_string(),
                    cases,
                    tolerance,
                }
            }
            (None, None, Some(io)) => {
                if io.is_empty() {
                    return Err(CheckError::new("`io` has no tests"));
                }
                Style::Io {
                    io: io.clone(),
                    whitespace: p.whitespace.unwrap_or_default(),
                }
            }
            (None, None, None) => {
                return Err(CheckError::new("no tests")
                    .with_hint("give one of `test` + `entry_point`, `call` + `cases`, or `io`"));
            }
            _ => return Err(CheckError::new("give only one of `test`, `call` and `io`")),
        };
        if p.entry_point.is_some() && !matches!(style, Style::HumanEval { .. }) {
            return Err(CheckError::new("`entry_point` goes with `test`"));
        }
        if p.cases.is_some() && !matches!(style, Style::Call { .. }) {
            return Err(CheckError::new("`cases` goes with `call`")
                .with_hint("stdin/stdout tests are `io: [{stdin, stdout}]`"));
        }
        if p.float_tolerance.is_some() && !matches!(style, Style::Call { .. }) {
            return Err(CheckError::new(
                "`float_tolerance` goes with `call` + `cases`",
            ));
        }
        if p.whitespace.is_some() && !matches!(style, Style::Io { .. }) {
            return Err(CheckError::new("`whitespace` goes with `io`"));
        }
        if harness == Harness::None && !matches!(style, Style::Io { .. }) {
            return Err(
                CheckError::new(format!("language `{language}` supports only `io` tests"))
                    .with_hint("`test` and `call` need a harness: python or javascript"),
            );
        }
        if let Style::Call { call, .. } = &style {
            let ok = call.split('.').count() <= 2
                && call.split('.').all(|s| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
                });
            if !ok {
                return Err(CheckError::new(format!(
                    "`call` must be a function name or `Class.method`, not `{call}`"
                )));
            }
        }
        let timeout = p.timeout.unwrap_or(10.0);
        if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
            return Err(CheckError::new("`timeout` must be seconds in (0, 3600]"));
        }
        let memory_mb = p.memory_mb.unwrap_or(1024);
        if memory_mb < 16 {
            return Err(CheckError::new("`memory_mb` must be at least 16"));
        }
        let limits = Limits {
            wall: std::time::Duration::from_secs_f64(timeout),
            cpu_s: p.cpu.unwrap_or(timeout.ceil() as u64).max(1),
            address_space: runner.limit_address_space.then_some(memory_mb << 20),
            output: (p.output_kb.unwrap_or(1024).max(1) as usize) << 10,
            file_size: p.file_size_mb.unwrap_or(16) << 20,
            open_files: p.open_files.unwrap_or(64).max(8),
            processes: p.processes.unwrap_or(32).max(1),
        };
        let compile_limits = Limits {
            wall: std::time::Duration::from_secs(120),
            cpu_s: 120,
            address_space: None,
            output: 256 << 10,
            file_size: 256 << 20,
            open_files: 256,
            processes: 256,
        };
        let syntax = Syntax::for_language(&language, &runner.fence_tags);
        let warm = harness == Harness::Python
            && runner.compile.is_none()
            && runner.run == ["python3", "{file}"]
            && !matches!(style, Style::Io { .. });
        Ok(CodeGrader {
            language,
            runner,
            harness,
            syntax,
            style,
            prompt: p.prompt,
            limits,
            compile_limits,
            memory_mb,
            partial_credit: p.partial_credit.unwrap_or(true),
            warm,
        })
    }

    fn function_name(&self) -> Option<&str> {
        match &self.style {
            Style::HumanEval { entry_point, .. } => Some(entry_point),
            Style::Call { call, .. } => Some(call.rsplit('.').next().unwrap_or(call)),
            Style::Io { .. } => None,
        }
    }

    fn expected(&self) -> String {
        match &self.style {
            Style::HumanEval { entry_point, .. } => {
                format!("`{entry_point}` passes the test's check()")
            }
            Style::Call { call, cases, .. } => format!(
                "{} test{} of `{call}` pass",
                cases.len(),
                plural(cases.len())
            ),
            Style::Io { io, .. } => {
                format!("{} stdin/stdout test{} pass", io.len(), plural(io.len()))
            }
        }
    }

    fn total(&self) -> usize {
        match &self.style {
            Style::HumanEval { .. } => 1,
            Style::Call { cases, .. } => cases.len(),
            Style::Io { io, .. } => io.len(),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What one graded sample came to, before it becomes a [`Grade`].
struct Verdict {
    kind: &'static str,
    passed: usize,
    found: String,
    tests: Vec<Value>,
    stderr: Option<String>,
}

impl Verdict {
    fn new(kind: &'static str, passed: usize, found: impl Into<String>) -> Verdict {
        Verdict {
            kind,
            passed,
            found: found.into(),
            tests: Vec::new(),
            stderr: None,
        }
    }
}

fn outcome_of(kind: &str) -> Option<Outcome> {
    match kind {
        "passed" | "wrong_answer" | "no_code" | "missing_function" => None,
        "timeout" | "cpu_limit" | "compile_timeout" => Some(Outcome::CodeTimeout),
        "sandbox" | "test_error" => Some(Outcome::InfraError),
        _ => Some(Outcome::CodeError),
    }
}

impl Grader for CodeGrader {
    fn grade(&self, sample: &Sample<'_>) -> Grade {
        let prompt = self.prompt.clone().or_else(|| match &sample.case.prompt {
            Prompt::Completion(t) => Some(t.clone()),
            Prompt::Chat(_) => None,
        });
        let func = self.function_name();
        let (verdict, how) = match extract::extract(sample.answer, &self.syntax, func) {
            None => (
                Verdict::new("no_code", 0, "no code in the answer"),
                "none".to_string(),
            ),
            Some(ex) => {
                let (program, how) = match &prompt {
                    Some(p) if !p.is_empty() => {
                        let (prog, join) = extract::join_prompt(p, &ex.code, &self.syntax, func);
                        (prog, format!("{}; {join}", ex.how))
                    }
                    _ => (ex.code.clone(), ex.how.clone()),
                };
                let v = match self.execute(&program) {
                    Ok(v) => v,
                    Err(e) => Verdict::new("sandbox", 0, format!("sandbox failure: {}", e.0)),
                };
                (v, how)
            }
        };
        let total = self.total();
        let pass = verdict.kind == "passed";
        let score = if pass {
            1.0
        } else if !self.partial_credit || total == 0 {
            0.0
        } else {
            verdict.passed as f64 / total as f64
        };
        let mut found = verdict.found;
        let iso = isolation();
        let mut detail = json!({
            "kind": verdict.kind,
            "language": self.language,
            "extraction": how,
            "passed": verdict.passed,
            "total": total,
            "sandbox": iso.describe(),
        });
        if let Some(w) = iso.warning() {
            found = format!("{w}; {found}");
            detail["sandbox_warning"] = Value::String(w);
        }
        if !verdict.tests.is_empty() {
            detail["tests"] = Value::Array(verdict.tests);
        }
        if let Some(s) = verdict.stderr.filter(|s| !s.trim().is_empty()) {
            detail["stderr_tail"] = Value::String(s);
        }
        let extracted = match &self.style {
            Style::HumanEval { .. } => verdict.kind.to_string(),
            _ if matches!(verdict.kind, "passed" | "wrong_answer") => {
                format!("{}/{total} tests", verdict.passed)
            }
            _ => format!("{}/{total} tests, {}", verdict.passed, verdict.kind),
        };
        Grade {
            pass,
            score,
            expected: self.expected(),
            found,
            extracted: Some(extracted),
            outcome: if pass { None } else { outcome_of(verdict.kind) },
            detail: Some(detail),
        }
    }
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let v: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = v.len().saturating_sub(lines);
    truncate(&v[start..].join("\n"), 2000)
}

fn last_line(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    truncate(
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim(),
        300,
    )
}

fn secs(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

impl CodeGrader {
    fn execute(&self, program: &str) -> Result<Verdict, sandbox::SandboxError> {
        let slot = sandbox::acquire();
        let token = result_token();
        if self.warm {
            let spec = self.harness_spec(&token).to_string();
            let files: [(&str, &[u8]); 2] = [
                ("solution.py", program.as_bytes()),
                ("llmtest_spec.json", spec.as_bytes()),
            ];
            if let Some((out, lines)) = zygote::run(&slot, &files, &self.limits)? {
                return Ok(self.interpret(&out, &authentic(lines, &token)));
            }
        }
        let wd = sandbox::Workdir::new(&slot)?;
        let run_file = match (self.harness, &self.style) {
            (h, Style::HumanEval { .. } | Style::Call { .. }) => {
                let (name, text) = h.file().expect("checked at build: a harness exists");
                wd.write(name, text.as_bytes())?;
                wd.write(h.solution_file(), program.as_bytes())?;
                wd.write(
                    "llmtest_spec.json",
                    self.harness_spec(&token).to_string().as_bytes(),
                )?;
                name.to_string()
            }
            (_, Style::Io { .. }) => {
                wd.write(&self.runner.file, program.as_bytes())?;
                self.runner.file.clone()
            }
        };
        if let Some(compile) = &self.runner.compile {
            let argv = runner::substitute(compile, &self.runner.file, self.memory_mb);
            let out = sandbox::run(&slot, &argv, wd.path(), None, &self.compile_limits)?;
            if out.timed_out {
                return Ok(Verdict::new(
                    "compile_timeout",
                    0,
                    format!("compilation timed out after {}", secs(out.wall)),
                ));
            }
            if out.exit != Exit::Code(0) {
                let mut v = Verdict::new(
                    "compile_error",
                    0,
                    format!("compile error: {}", first_error(&out.stderr)),
                );
                v.stderr = Some(tail(&out.stderr, 20));
                return Ok(v);
            }
        }
        let argv = runner::substitute(&self.runner.run, &run_file, self.memory_mb);
        match &self.style {
            Style::Io { io, whitespace } => self.run_io(&slot, &wd, &argv, io, *whitespace),
            _ => {
                let out = sandbox::run(&slot, &argv, wd.path(), None, &self.limits)?;
                let lines = read_results(&wd.path().join("llmtest_result.jsonl"));
                Ok(self.interpret(&out, &authentic(lines, &token)))
            }
        }
    }

    /// What the harness reads from `llmtest_spec.json` (and deletes before the program runs).
    fn harness_spec(&self, token: &str) -> Value {
        match &self.style {
            Style::HumanEval { test, entry_point } => {
                json!({"style": "humaneval", "test": test, "entry_point": entry_point, "token": token})
            }
            Style::Call { call, cases, .. } => {
                json!({"style": "call", "call": call, "cases": cases, "token": token})
            }
            Style::Io { .. } => Value::Null,
        }
    }

    fn run_io(
        &self,
        slot: &sandbox::Slot,
        wd: &sandbox::Workdir,
        argv: &[String],
        io: &[IoCase],
        ws: Whitespace,
    ) -> Result<Verdict, sandbox::SandboxError> {
        let mut passed = 0;
        let mut tests = Vec::new();
        let mut first_bad: Option<(&'static str, String, Option<String>)> = None;
        for (i, t) in io.iter().enumerate() {
            let out = sandbox::run(
                slot,
                argv,
                wd.path(),
                Some(t.stdin.as_bytes()),
                &self.limits,
            )?;
            let got = String::from_utf8_lossy(&out.stdout).into_owned();
            let (kind, msg) =
                if let Some((k, m)) = resource_kind(&out, self.limits.wall, self.limits.cpu_s) {
                    (k, m)
                } else if out.exit != Exit::Code(0) {
                    let kind = if String::from_utf8_lossy(&out.stderr).contains("MemoryError") {
                        "memory_limit"
                    } else {
                        "runtime_error"
                    };
                    (
                        kind,
                        format!("{}: {}", exit_text(out.exit), last_line(&out.stderr)),
                    )
                } else if ws.normalize(&got) == ws.normalize(&t.stdout) {
                    ("passed", String::new())
                } else {
                    (
                        "wrong_answer",
                        format!(
                            "printed {}, expected {}",
                            show(&Value::String(got.clone()), 200),
                            show(&Value::String(t.stdout.clone()), 200)
                        ),
                    )
                };
            if kind == "passed" {
                passed += 1;
                tests.push(json!({"test": i + 1, "pass": true}));
                continue;
            }
            tests.push(json!({"test": i + 1, "pass": false, "kind": kind, "message": msg}));
            let worse = first_bad
                .as_ref()
                .is_none_or(|(k, _, _)| severity(kind) > severity(k));
            if worse {
                first_bad = Some((
                    kind,
                    format!("test {}/{}: {msg}", i + 1, io.len()),
                    Some(tail(&out.stderr, 10)),
                ));
            }
            if matches!(kind, "timeout" | "cpu_limit") {
                break; // later tests would most likely time out too
            }
        }
        Ok(match first_bad {
            None => Verdict {
                kind: "passed",
                passed,
                found: format!("all {passed} tests passed"),
                tests,
                stderr: None,
            },
            Some((kind, found, stderr)) => Verdict {
                kind,
                passed,
                found,
                tests,
                stderr,
            },
        })
    }

    fn interpret(&self, out: &Output, lines: &[Value]) -> Verdict {
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
                    .filter(|s| *s != "finished")
                    .map(|s| (s, l))
            });
        let stderr_tail = Some(tail(&out.stderr, 12));
        // Per-case results (function I/O).
        let mut passed = 0;
        let mut tests = Vec::new();
        let mut first_bad: Option<(&'static str, String)> = None;
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
                let (kind, msg): (&'static str, String) = match line {
                    None => continue,
                    Some(l) => match l.get("value") {
                        Some(v) if equal(&c.expect, v, *tolerance) => ("passed", String::new()),
                        Some(v) => (
                            "wrong_answer",
                            format!(
                                "{call_text} returned {}, expected {}",
                                show(v, 200),
                                show(&c.expect, 200)
                            ),
                        ),
                        None => {
                            let k = match l.get("status").and_then(Value::as_str) {
                                Some("memory_limit") => "memory_limit",
                                Some("early_exit") => "early_exit",
                                _ => "runtime_error",
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
                if kind == "passed" {
                    passed += 1;
                    tests.push(json!({"test": i + 1, "pass": true}));
                } else {
                    tests.push(json!({"test": i + 1, "pass": false, "kind": kind, "message": msg}));
                    if first_bad
                        .as_ref()
                        .is_none_or(|(k, _)| severity(kind) > severity(k))
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
        let mk = |kind: &'static str, passed: usize, found: String, tests: Vec<Value>| Verdict {
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
                "passed" => return mk("passed", 1, "passed the test's check()".into(), tests),
                "wrong_answer" => {
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
                    return mk("wrong_answer", 0, found, tests);
                }
                "compile_error" => {
                    return mk(
                        "compile_error",
                        0,
                        format!("compile error: {message}"),
                        tests,
                    );
                }
                "memory_limit" => {
                    return mk(
                        "memory_limit",
                        passed,
                        format!(
                            "memory limit ({} MiB) exceeded: {message}{at}",
                            self.memory_mb
                        ),
                        tests,
                    );
                }
                "early_exit" => {
                    return mk(
                        "early_exit",
                        passed,
                        format!("the program exited before its tests finished: {message}{at}"),
                        tests,
                    );
                }
                "missing_function" => return mk("missing_function", 0, message, tests),
                "test_error" => {
                    return mk(
                        "test_error",
                        0,
                        format!(
                            "the suite's test program failed (not the model's fault): {message}"
                        ),
                        tests,
                    );
                }
                "runtime_error" => {
                    let phase = match l.get("phase").and_then(Value::as_str) {
                        Some("load") => "while loading the code",
                        _ => "during the test",
                    };
                    return mk(
                        "runtime_error",
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
                    "memory_limit",
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
                    "early_exit",
                    passed,
                    format!(
                        "the program exited with status 0 before its tests finished{}",
                        progress(passed)
                    ),
                    tests,
                ),
                e => mk(
                    "runtime_error",
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
                "passed",
                passed,
                format!("all {passed} tests passed"),
                tests,
            ),
            Some((kind, found)) => mk(kind, passed, found, tests),
        }
    }
}

/// Timeouts and limits the sandbox enforced, if any.
fn resource_kind(
    out: &Output,
    wall: std::time::Duration,
    cpu: u64,
) -> Option<(&'static str, String)> {
    if out.timed_out {
        return Some((
            "timeout",
            format!("timed out after {} (wall-clock limit)", secs(wall)),
        ));
    }
    if out.cpu_exceeded {
        return Some(("cpu_limit", format!("CPU time limit ({cpu} s) exceeded")));
    }
    if out.output_exceeded {
        return Some((
            "output_limit",
            format!(
                "killed for writing more than {} KiB of output",
                out.stdout.len().max(out.stderr.len()) >> 10
            ),
        ));
    }
    None
}

fn exit_text(e: Exit) -> String {
    match e {
        Exit::Code(c) => format!("exited with status {c}"),
        Exit::Signal(s) => format!(
            "killed by signal {s}{}",
            match s {
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGXFSZ => " (SIGXFSZ: file size limit)",
                _ => "",
            }
        ),
    }
}

fn severity(kind: &str) -> u8 {
    match kind {
        "wrong_answer" => 1,
        "runtime_error" | "early_exit" => 2,
        "memory_limit" | "output_limit" => 3,
        "timeout" | "cpu_limit" => 4,
        _ => 0,
    }
}

fn first_error(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    let line = s
        .lines()
        .find(|l| l.trim_start().starts_with("error") || l.contains("Error"))
        .or_else(|| s.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("the compiler failed without a message");
    truncate(line.trim(), 300)
}

/// A fresh secret per execution: the harness marks its result lines with it, so lines the
/// program under test writes into the result file are not taken for the harness's own.
fn result_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        // RandomState is seeded from the OS's randomness too.
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The result lines that carry this execution's token, without it.
fn authentic(lines: Vec<Value>, token: &str) -> Vec<Value> {
    lines
        .into_iter()
        .filter_map(|mut l| {
            let ok = l.get("k").and_then(Value::as_str) == Some(token);
            let obj = l.as_object_mut()?;
            obj.remove("k");
            ok.then_some(l)
        })
        .collect()
}

pub(crate) fn read_results(path: &std::path::Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(params: Value) -> Result<Arc<dyn Grader>, CheckError> {
        CodeFactory.build(params.as_object().unwrap(), &GraderContext::default())
    }

    #[test]
    fn params_are_strict_and_checked() {
        let e = build(json!({"call": "f", "cases": [{"args": [1], "expect": 1}], "timout": 3}))
            .err()
            .unwrap();
        assert!(e.message.contains("unknown key `timout`"), "{}", e.message);
        assert!(e.hint.unwrap().contains("timeout"));
        assert!(
            build(json!({"test": "def check(c): pass"}))
                .err()
                .unwrap()
                .message
                .contains("entry_point")
        );
        assert!(
            build(json!({"call": "f", "io": [{"stdout": "1"}]}))
                .err()
                .unwrap()
                .message
                .contains("only one")
        );
        assert!(
            build(json!({"language": "cobol", "io": [{"stdout": "1"}]}))
                .err()
                .unwrap()
                .message
                .contains("no built-in runner")
        );
        assert!(
            build(json!({"language": "rust", "call": "f", "cases": [{"expect": 1}]}))
                .err()
                .unwrap()
                .message
                .contains("only `io`")
        );
        assert!(
            build(
                json!({"call": "f", "cases": [{"args": [1], "expect": 1}], "whitespace": "exact"})
            )
            .is_err()
        );
        assert!(build(json!({"language": "go", "runner": {"file": "main.go", "run": ["./main"], "compile": ["go", "build", "-o", "main", "main.go"]}, "io": [{"stdout": ""}]})).is_ok());
    }

    #[test]
    fn whitespace_policies() {
        assert_eq!(Whitespace::Lines.normalize("1 \r\n2\n\n\n"), "1\n2");
        assert_eq!(Whitespace::Tokens.normalize(" 1\n 2 "), "1 2");
        assert_eq!(Whitespace::Exact.normalize("1\n"), "1\n");
    }
}
