//! The `code` assertion's parameters, checked when the suite loads, and the grader they build.

use serde::Deserialize;
use serde_json::{Map, Value};

use llmtest_spec::CheckError;

use crate::extract::Syntax;
use crate::runner::{self, Harness, RunnerDef};
use crate::sandbox::Limits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    #[serde(default)]
    pub(crate) language: Option<String>,
    #[serde(default)]
    pub(crate) runner: Option<RunnerDef>,
    #[serde(default)]
    pub(crate) prompt: Option<String>,
    #[serde(default)]
    pub(crate) partial_credit: Option<bool>,
    // HumanEval style
    #[serde(default)]
    pub(crate) test: Option<String>,
    #[serde(default)]
    pub(crate) entry_point: Option<String>,
    // function I/O
    #[serde(default)]
    pub(crate) call: Option<String>,
    #[serde(default)]
    pub(crate) cases: Option<Vec<CallCase>>,
    #[serde(default)]
    pub(crate) float_tolerance: Option<f64>,
    // stdin/stdout
    #[serde(default)]
    pub(crate) io: Option<Vec<IoCase>>,
    #[serde(default)]
    pub(crate) whitespace: Option<Whitespace>,
    // limits
    #[serde(default)]
    pub(crate) timeout: Option<f64>,
    #[serde(default)]
    pub(crate) cpu: Option<u64>,
    #[serde(default)]
    pub(crate) memory_mb: Option<u64>,
    #[serde(default)]
    pub(crate) output_kb: Option<u64>,
    #[serde(default)]
    pub(crate) processes: Option<u64>,
    #[serde(default)]
    pub(crate) open_files: Option<u64>,
    #[serde(default)]
    pub(crate) file_size_mb: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallCase {
    #[serde(default)]
    pub(crate) args: Vec<Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) kwargs: Map<String, Value>,
    #[serde(skip_serializing)]
    pub(crate) expect: Value,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IoCase {
    #[serde(default)]
    pub(crate) stdin: String,
    pub(crate) stdout: String,
}

/// How stdout is compared with the expected output.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Whitespace {
    /// Byte for byte.
    Exact,
    /// Trailing spaces of each line, `\r` and trailing blank lines are ignored.
    #[default]
    Lines,
    /// Any run of whitespace equals any other (token by token).
    Tokens,
}

impl Whitespace {
    pub(crate) fn normalize(self, s: &str) -> String {
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
pub(crate) enum Style {
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
    pub(crate) language: String,
    pub(crate) runner: RunnerDef,
    pub(crate) harness: Harness,
    pub(crate) syntax: Syntax,
    pub(crate) style: Style,
    pub(crate) prompt: Option<String>,
    pub(crate) limits: Limits,
    pub(crate) compile_limits: Limits,
    pub(crate) memory_mb: u64,
    pub(crate) partial_credit: bool,
    /// Fork executions from a warm interpreter (built-in Python runner, harness styles).
    pub(crate) warm: bool,
}

impl CodeGrader {
    pub(crate) fn new(p: Params) -> Result<CodeGrader, CheckError> {
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

    pub(crate) fn function_name(&self) -> Option<&str> {
        match &self.style {
            Style::HumanEval { entry_point, .. } => Some(entry_point),
            Style::Call { call, .. } => Some(call.rsplit('.').next().unwrap_or(call)),
            Style::Io { .. } => None,
        }
    }

    pub(crate) fn expected(&self) -> String {
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

    pub(crate) fn total(&self) -> usize {
        match &self.style {
            Style::HumanEval { .. } => 1,
            Style::Call { cases, .. } => cases.len(),
            Style::Io { io, .. } => io.len(),
        }
    }
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
