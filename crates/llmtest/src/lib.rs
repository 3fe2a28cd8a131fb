//! llmtest: evaluate LLMs as an ordinary part of `cargo test`.
//!
//! Suites written in YAML become libtest trials (one per case × model), graded by
//! assertions that are right where naive ones fail, snapshotted per suite × model with
//! insta. The same engine drives the `llmtest` command-line tool.
//!
//! In a project, `tests/evals.rs` (with `harness = false` in `Cargo.toml`):
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     llmtest::harness()
//! }
//! ```
//!
//! Plugins: register your own assertion types or backends, and suites use them by name.
//!
//! ```no_run
//! use std::sync::Arc;
//! use llmtest::grade::{FnFactory, Grade, Sample, GraderFactory};
//!
//! fn main() -> std::process::ExitCode {
//!     let shouting = FnFactory::new("all-caps", |_params, _ctx| {
//!         Ok(Arc::new(|s: &Sample<'_>| {
//!             let ok = s.answer.chars().all(|c| !c.is_lowercase());
//!             Grade::binary(ok, "an answer in capitals", s.answer.to_owned())
//!         }) as Arc<dyn llmtest::grade::Grader>)
//!     });
//!     llmtest::Llmtest::new().grader(shouting).harness()
//! }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

mod cache;
mod calibrate;
mod cli;
pub mod compare;
mod engine;
mod harness;
mod journal;
pub mod judge;
pub mod perf;
pub mod report;
pub mod results;
mod runner;
pub mod shard;
mod snapshot;
pub mod stats;

pub use engine::{Engine, Plan, PlanOptions, Work};
pub use llmtest_backend as backend;
pub use llmtest_grade as grade;
pub use llmtest_spec as spec;

use llmtest_backend::BackendFactory;
use llmtest_grade::{GraderContext, GraderFactory, GraderRegistry};

/// The one entry point: which project, which plugins; then [`Llmtest::harness`] or
/// [`Llmtest::cli`].
#[derive(Clone, Default)]
pub struct Llmtest {
    root: Option<PathBuf>,
    graders: Vec<Arc<dyn GraderFactory>>,
    backends: Vec<Arc<dyn BackendFactory>>,
}

impl Llmtest {
    /// Built-in graders and backends; the project root is `LLMTEST_ROOT`, else the package
    /// being tested (`CARGO_MANIFEST_DIR`), else the current directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use this project root.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Registers an assertion type (replacing a built-in of the same name).
    pub fn grader(mut self, f: impl GraderFactory + 'static) -> Self {
        self.graders.push(Arc::new(f));
        self
    }

    /// Registers a backend (replacing a built-in of the same name).
    pub fn backend(mut self, f: impl BackendFactory + 'static) -> Self {
        self.backends.push(Arc::new(f));
        self
    }

    /// Runs the suites as a libtest-compatible test binary.
    pub fn harness(self) -> ExitCode {
        // `LLMTEST_SHARD=K/N`: only the trials of that shard (libtest's own arguments leave
        // no room for a flag of ours).
        let shard = match std::env::var("LLMTEST_SHARD") {
            Ok(v) if !v.trim().is_empty() => match v.parse::<shard::Shard>() {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("llmtest: LLMTEST_SHARD: {e}");
                    return ExitCode::from(2);
                }
            },
            _ => None,
        };
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        let parsed = quick_args(&args).unwrap_or_else(|| libtest_mimic::Arguments::from_iter(args));
        harness::run(&self, parsed, shard)
    }

    /// Runs the `llmtest` command line with the process's arguments.
    pub fn cli(self) -> ExitCode {
        self.cli_from(std::env::args_os())
    }

    /// Runs the `llmtest` command line with these arguments (the first is the program name).
    pub fn cli_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString>,
    {
        cli::main(&self, args.into_iter().map(Into::into).collect())
    }

    pub(crate) fn root_dir(&self) -> PathBuf {
        if let Some(r) = &self.root {
            return r.clone();
        }
        for var in ["LLMTEST_ROOT", "CARGO_MANIFEST_DIR"] {
            if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                return PathBuf::from(v);
            }
        }
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    }

    /// Every assertion type: built-ins, then the optional crates', then plugins.
    pub fn grader_registry(&self, root: &std::path::Path) -> GraderRegistry {
        let mut r = GraderRegistry::with_builtins(GraderContext {
            root: root.to_path_buf(),
        });
        #[cfg(feature = "code")]
        for f in llmtest_code::factories() {
            r.register(f);
        }
        for f in &self.graders {
            r.register(f.clone());
        }
        r
    }

    /// Starts the backends of the models that `work` uses (a config error prints its
    /// diagnostics and gives exit code 2). Returns the engine and those models, sorted.
    pub(crate) fn start_engine(
        &self,
        plan: &engine::Plan,
        work: &[engine::Work],
    ) -> Result<(Arc<engine::Engine>, Vec<String>), ExitCode> {
        let mut models = work
            .iter()
            .map(|w| w.model.clone())
            .collect::<std::collections::BTreeSet<_>>();
        // Judges and `pairwise` opponents of the suites that run start beside the candidates.
        let mut suites: Vec<Arc<llmtest_spec::Suite>> = Vec::new();
        for w in work {
            if !suites.iter().any(|s| Arc::ptr_eq(s, &w.suite)) {
                suites.push(w.suite.clone());
            }
        }
        models.extend(judge::models_named(&suites, plan.profile.judge.as_deref()));
        let models: Vec<String> = models.into_iter().collect();
        match engine::Engine::new(plan, &models, &self.backend_factories()) {
            Ok(e) => Ok((Arc::new(e), models)),
            Err(d) => {
                eprintln!("{d}");
                Err(ExitCode::from(2))
            }
        }
    }

    /// Every backend by name: built-ins, then the optional crates', then plugins.
    pub fn backend_factories(&self) -> BTreeMap<String, Arc<dyn BackendFactory>> {
        let mut all: Vec<Arc<dyn BackendFactory>> = llmtest_backend::builtin_factories();
        #[cfg(feature = "openai")]
        all.push(llmtest_openai::factory());
        #[cfg(feature = "onnx")]
        all.push(llmtest_onnx::factory());
        all.extend(self.backends.iter().cloned());
        all.into_iter().map(|f| (f.name().to_owned(), f)).collect()
    }
}

/// How nextest runs one trial (`NAME --exact --nocapture`, maybe `--ignored` or
/// `--include-ignored`, in any order), read without clap: its parser cost half a millisecond
/// of every such process in a debug build. Anything else (`None`) goes to libtest-mimic's.
fn quick_args(args: &[std::ffi::OsString]) -> Option<libtest_mimic::Arguments> {
    let mut a = libtest_mimic::Arguments::default();
    for arg in args.iter().skip(1) {
        let flag = match arg.to_str()? {
            "--exact" => &mut a.exact,
            "--nocapture" => &mut a.nocapture,
            "--ignored" => &mut a.ignored,
            "--include-ignored" => &mut a.include_ignored,
            s if s.starts_with('-') || a.filter.is_some() => return None,
            s => {
                a.filter = Some(s.to_owned());
                continue;
            }
        };
        if std::mem::replace(flag, true) {
            return None; // given twice: the full parser's error
        }
    }
    (a.exact && a.filter.is_some()).then_some(a)
}

/// The harness with built-ins only: `fn main() -> ExitCode { llmtest::harness() }`.
pub fn harness() -> ExitCode {
    Llmtest::new().harness()
}

#[cfg(test)]
mod quick_args_tests {
    use super::quick_args;

    fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
        args.iter().map(Into::into).collect()
    }

    #[test]
    fn nextest_forms_read_as_the_full_parser_reads_them() {
        for args in [
            &["bin", "--exact", "a::b::c", "--nocapture"][..],
            &["bin", "a::b::c", "--exact", "--nocapture", "--ignored"],
            &[
                "bin",
                "--nocapture",
                "--include-ignored",
                "--exact",
                "s::m::snapshot",
            ],
            &["bin", "--exact", "with space::x::y"],
        ] {
            let quick = quick_args(&os(args)).unwrap_or_else(|| panic!("{args:?}"));
            let full = libtest_mimic::Arguments::from_iter(os(args));
            assert_eq!(format!("{quick:?}"), format!("{full:?}"), "{args:?}");
        }
    }

    #[test]
    fn anything_else_goes_to_the_full_parser() {
        for args in [
            &["bin"][..],
            &["bin", "--list"],
            &["bin", "a::b"],
            &["bin", "--exact"],
            &["bin", "--exact", "a", "b"],
            &["bin", "--exact", "--exact", "a"],
            &["bin", "--exact", "a", "--skip", "b"],
            &["bin", "--exact", "a", "--test-threads", "1"],
            &["bin", "--exact", "--", "a"],
            &["bin", "--exact", "-q", "a"],
        ] {
            assert!(quick_args(&os(args)).is_none(), "{args:?}");
        }
    }
}
