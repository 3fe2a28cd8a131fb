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
//! program cannot ptrace it or read its memory; killing it only fails the program. The
//! candidate's copy of the harness is the program's to change, so its replies are read as
//! data: an error it reports counts as a runtime error (or a memory limit, or an early
//! exit), whatever status it claims.
//!
//! HumanEval semantics kept across the boundary: the test's `check(candidate)` calls the
//! program's function; lists, dicts, sets and bytearrays the function changes in place are
//! changed in the test too; callables pass both ways (a test's `key=` lambda, a returned
//! closure) and are called back where they live; builtin exceptions (`ValueError`, …) are
//! raised again in the test as the same type, and the program's own exception classes as
//! `CandidateError`; the program's top-level functions are visible to the test
//! (HumanEval/38's check calls `encode_cyclic`). Not served: objects of the program's own
//! classes (they reach the test opaque, so only identity comparisons hold) and attributes
//! set on the function.
//!
//! JavaScript is served the same way: the judge (node) reads the spec, deletes it, then
//! starts the candidate as a second node process with the same flags, the two talking over
//! pipes. Values cross as tagged JSON: numbers (`NaN`, `±Infinity` and `-0` kept), BigInt,
//! strings, booleans, `null` and `undefined`, arrays, plain objects (objects of the
//! program's own classes arrive as plain objects of their enumerable fields), `Set`, `Map`,
//! typed arrays, `Date`; functions are called back where they live. Values are made in the
//! test's own realm, so `assert.deepStrictEqual` holds as it did in one interpreter;
//! arrays, plain objects, `Set`s and `Map`s changed in place are changed in the test too;
//! builtin errors (`TypeError`, `RangeError`, …) are thrown again as the test's own types.
//! The test sees the program's top-level functions (`function`, and `const`/`let`/`class`
//! names bound to functions). So patching `fs` or `JSON`, or walking `require.cache`,
//! changes only the candidate's process. Not closed: node cannot make itself non-dumpable,
//! so where the kernel lets a process read its same-user parent's memory (`/proc/PID/mem`,
//! no Yama restriction), a program could still find the judge's token there.

mod compare;
pub mod extract;
mod interpret;
mod params;
mod run;
mod runner;
pub mod sandbox;
mod shared;
mod verdict;
mod zygote;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use llmtest_grade::{Grade, Grader, GraderContext, GraderFactory, Sample, parse_params};
use llmtest_spec::{CheckError, Prompt};

pub use extract::Extracted;
pub use params::CodeGrader;
pub use runner::RunnerDef;
pub use sandbox::{Isolation, SANDBOX_PATH, isolation};
#[doc(hidden)]
pub use shared::use_shared_warm;

#[cfg(test)]
use params::Whitespace;
use params::{Params, Style};
use verdict::{Kind, Verdict};

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

impl Grader for CodeGrader {
    fn grade(&self, sample: &Sample<'_>) -> Grade {
        let prompt = self.prompt.clone().or_else(|| match &sample.case.prompt {
            Prompt::Completion(t) => Some(t.clone()),
            Prompt::Chat(_) => None,
        });
        let func = self.function_name();
        let (verdict, how) = match extract::extract(sample.answer, &self.syntax, func) {
            None => (
                Verdict::new(Kind::NoCode, 0, "no code in the answer"),
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
                    Err(e) => Verdict::new(Kind::Sandbox, 0, format!("sandbox failure: {}", e.0)),
                };
                (v, how)
            }
        };
        let total = self.total();
        let pass = verdict.kind == Kind::Passed;
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
            "kind": verdict.kind.as_str(),
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
            Style::HumanEval { .. } => verdict.kind.as_str().to_string(),
            _ if matches!(verdict.kind, Kind::Passed | Kind::WrongAnswer) => {
                format!("{}/{total} tests", verdict.passed)
            }
            _ => format!(
                "{}/{total} tests, {}",
                verdict.passed,
                verdict.kind.as_str()
            ),
        };
        Grade {
            pass,
            score,
            expected: self.expected(),
            found,
            extracted: Some(extracted),
            outcome: if pass { None } else { verdict.kind.outcome() },
            detail: Some(detail),
        }
    }
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
