//! Running a program: the harness files or the program itself in a sandbox work directory,
//! the compile step, stdin/stdout tests, and the authenticated result lines.

use serde_json::{Value, json};

use crate::compare::show;
use crate::params::{CodeGrader, IoCase, Style, Whitespace};
use crate::runner;
use crate::sandbox::{self, Exit};
use crate::verdict::{Kind, Verdict, exit_text, first_error, last_line, resource_kind, secs, tail};
use crate::zygote;

impl CodeGrader {
    pub(crate) fn execute(&self, program: &str) -> Result<Verdict, sandbox::SandboxError> {
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
                    Kind::CompileTimeout,
                    0,
                    format!("compilation timed out after {}", secs(out.wall)),
                ));
            }
            if out.exit != Exit::Code(0) {
                let mut v = Verdict::new(
                    Kind::CompileError,
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
        let mut first_bad: Option<(Kind, String, Option<String>)> = None;
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
                        Kind::MemoryLimit
                    } else {
                        Kind::RuntimeError
                    };
                    (
                        kind,
                        format!("{}: {}", exit_text(out.exit), last_line(&out.stderr)),
                    )
                } else if ws.normalize(&got) == ws.normalize(&t.stdout) {
                    (Kind::Passed, String::new())
                } else {
                    (
                        Kind::WrongAnswer,
                        format!(
                            "printed {}, expected {}",
                            show(&Value::String(got.clone()), 200),
                            show(&Value::String(t.stdout.clone()), 200)
                        ),
                    )
                };
            if kind == Kind::Passed {
                passed += 1;
                tests.push(json!({"test": i + 1, "pass": true}));
                continue;
            }
            tests.push(json!({"test": i + 1, "pass": false, "kind": kind, "message": msg}));
            let worse = first_bad
                .as_ref()
                .is_none_or(|(k, _, _)| kind.severity() > k.severity());
            if worse {
                first_bad = Some((
                    kind,
                    format!("test {}/{}: {msg}", i + 1, io.len()),
                    Some(tail(&out.stderr, 10)),
                ));
            }
            if matches!(kind, Kind::Timeout | Kind::CpuLimit) {
                break; // later tests would most likely time out too
            }
        }
        Ok(match first_bad {
            None => Verdict {
                kind: Kind::Passed,
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
}

/// A fresh secret per execution: the harness marks its result lines with it, so lines the
/// program under test writes into the result file are not taken for the harness's own.
pub(crate) fn result_token() -> String {
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
pub(crate) fn authentic(lines: Vec<Value>, token: &str) -> Vec<Value> {
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
    use std::io::Read;
    let mut text = String::new();
    let Some(Ok(_)) = open_left_file(path).map(|f| f.take(64 << 20).read_to_string(&mut text))
    else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A file the program left in its directory, opened for the judge to read: only a regular
/// file, never through a link (the program could point one at `/proc/self/environ`, which the
/// judge would resolve to its own environment, or at a file only the judge may read) and
/// never a FIFO (opening one would wait for a writer).
pub(crate) fn open_left_file(path: &std::path::Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    f.metadata().ok()?.is_file().then_some(f)
}
