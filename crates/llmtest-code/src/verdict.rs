//! What an execution came to: the kind of verdict, its outcome and severity, and the texts
//! that describe exits, limits and compiler errors.

use llmtest_grade::Outcome;
use serde_json::Value;

use crate::compare::truncate;
use crate::sandbox::{Exit, Output};

/// The kind of a verdict, as it appears in a grade's detail (`kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Passed,
    WrongAnswer,
    NoCode,
    MissingFunction,
    CompileError,
    CompileTimeout,
    RuntimeError,
    EarlyExit,
    MemoryLimit,
    OutputLimit,
    Timeout,
    CpuLimit,
    /// The suite's own test program failed.
    TestError,
    /// The sandbox could not run the program.
    Sandbox,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Passed => "passed",
            Kind::WrongAnswer => "wrong_answer",
            Kind::NoCode => "no_code",
            Kind::MissingFunction => "missing_function",
            Kind::CompileError => "compile_error",
            Kind::CompileTimeout => "compile_timeout",
            Kind::RuntimeError => "runtime_error",
            Kind::EarlyExit => "early_exit",
            Kind::MemoryLimit => "memory_limit",
            Kind::OutputLimit => "output_limit",
            Kind::Timeout => "timeout",
            Kind::CpuLimit => "cpu_limit",
            Kind::TestError => "test_error",
            Kind::Sandbox => "sandbox",
        }
    }

    /// A status the harness reports in a result line (`finished` and unknown ones: none).
    pub fn from_harness(status: &str) -> Option<Kind> {
        Some(match status {
            "passed" => Kind::Passed,
            "wrong_answer" => Kind::WrongAnswer,
            "missing_function" => Kind::MissingFunction,
            "compile_error" => Kind::CompileError,
            "runtime_error" => Kind::RuntimeError,
            "early_exit" => Kind::EarlyExit,
            "memory_limit" => Kind::MemoryLimit,
            "test_error" => Kind::TestError,
            _ => return None,
        })
    }

    /// The outcome beside pass/fail: none for a pass or a plain wrong answer.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            Kind::Passed | Kind::WrongAnswer | Kind::NoCode | Kind::MissingFunction => None,
            Kind::Timeout | Kind::CpuLimit | Kind::CompileTimeout => Some(Outcome::CodeTimeout),
            Kind::Sandbox | Kind::TestError => Some(Outcome::InfraError),
            Kind::CompileError
            | Kind::RuntimeError
            | Kind::EarlyExit
            | Kind::MemoryLimit
            | Kind::OutputLimit => Some(Outcome::CodeError),
        }
    }

    /// Which failed test describes a program best: the worst one.
    pub fn severity(self) -> u8 {
        match self {
            Kind::WrongAnswer => 1,
            Kind::RuntimeError | Kind::EarlyExit => 2,
            Kind::MemoryLimit | Kind::OutputLimit => 3,
            Kind::Timeout | Kind::CpuLimit => 4,
            _ => 0,
        }
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What one graded sample came to, before it becomes a [`llmtest_grade::Grade`].
pub(crate) struct Verdict {
    pub kind: Kind,
    pub passed: usize,
    pub found: String,
    pub tests: Vec<Value>,
    pub stderr: Option<String>,
}

impl Verdict {
    pub fn new(kind: Kind, passed: usize, found: impl Into<String>) -> Verdict {
        Verdict {
            kind,
            passed,
            found: found.into(),
            tests: Vec::new(),
            stderr: None,
        }
    }
}

pub(crate) fn tail(bytes: &[u8], lines: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let v: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = v.len().saturating_sub(lines);
    truncate(&v[start..].join("\n"), 2000)
}

pub(crate) fn last_line(bytes: &[u8]) -> String {
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

pub(crate) fn secs(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// Timeouts and limits the sandbox enforced, if any.
pub(crate) fn resource_kind(
    out: &Output,
    wall: std::time::Duration,
    cpu: u64,
) -> Option<(Kind, String)> {
    if out.timed_out {
        return Some((
            Kind::Timeout,
            format!("timed out after {} (wall-clock limit)", secs(wall)),
        ));
    }
    if out.cpu_exceeded {
        return Some((Kind::CpuLimit, format!("CPU time limit ({cpu} s) exceeded")));
    }
    if out.output_exceeded {
        return Some((
            Kind::OutputLimit,
            format!(
                "killed for writing more than {} KiB of output",
                out.stdout.len().max(out.stderr.len()) >> 10
            ),
        ));
    }
    None
}

pub(crate) fn exit_text(e: Exit) -> String {
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

pub(crate) fn first_error(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    let line = s
        .lines()
        .find(|l| l.trim_start().starts_with("error") || l.contains("Error"))
        .or_else(|| s.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("the compiler failed without a message");
    truncate(line.trim(), 300)
}
