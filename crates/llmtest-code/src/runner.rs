//! Languages: how a program is compiled and run, and which test styles a language's
//! built-in harness supports.
//!
//! Built-in runners (`language:`):
//!
//! | language | file | compile | run | test styles |
//! |---|---|---|---|---|
//! | `python` (default) | `solution.py` | — | `python3 {file}` | `test`, `call`, `io` |
//! | `javascript` | `solution.js` | — | `node --max-old-space-size={memory_mb} {file}` | `test`, `call`, `io` |
//! | `rust` | `main.rs` | `rustc --edition=2021 -O -o main {file}` | `./main` | `io` |
//!
//! Your own runner, in the assertion (`{file}` is the program's file name, `{memory_mb}`
//! the memory limit; commands are looked up on the sandbox `PATH`, see
//! [`crate::SANDBOX_PATH`]):
//!
//! ```yaml
//! - type: code
//!   language: go
//!   runner:
//!     file: main.go
//!     compile: [go, build, -o, main, main.go]
//!     run: [./main]
//!     limit_address_space: false   # Go reserves a large virtual address space
//!     fence_tags: [golang]         # extra tags to prefer when extracting fenced blocks
//!   io: [{stdin: "1 2\n", stdout: "3\n"}]
//! ```
//!
//! A runner for `python` or `javascript` (another interpreter, say) keeps that language's
//! harness and test styles; a runner for any other language supports the `io` style.

use serde::Deserialize;

/// How to build and run programs of one language.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunnerDef {
    /// The file the extracted program is written to.
    pub file: String,
    /// The command that runs the program (`{file}`, `{memory_mb}` are substituted).
    pub run: Vec<String>,
    /// A command run once before the tests; a failure is a compile error.
    #[serde(default)]
    pub compile: Option<Vec<String>>,
    /// Apply the memory limit as an address-space limit (`RLIMIT_AS`, default true). Turn
    /// off for runtimes that reserve more virtual memory than they use (V8, Go, the JVM)
    /// and pass `{memory_mb}` to their own heap flag instead.
    #[serde(default = "yes")]
    pub limit_address_space: bool,
    /// Fence tags, besides the language name, that mark a block as this language.
    #[serde(default)]
    pub fence_tags: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Which harness runs the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Harness {
    Python,
    JavaScript,
    /// No harness: only stdin/stdout tests.
    None,
}

pub(crate) const BUILTIN: &[&str] = &["python", "javascript", "rust"];

pub(crate) fn canonical_language(lang: &str) -> String {
    match lang.to_lowercase().as_str() {
        "py" | "python3" => "python".into(),
        "js" | "node" | "nodejs" => "javascript".into(),
        "rs" => "rust".into(),
        other => other.to_string(),
    }
}

pub(crate) fn builtin(lang: &str) -> Option<RunnerDef> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Some(match lang {
        "python" => RunnerDef {
            file: "solution.py".into(),
            run: s(&["python3", "{file}"]),
            compile: None,
            limit_address_space: true,
            fence_tags: vec![],
        },
        "javascript" => RunnerDef {
            file: "solution.js".into(),
            run: s(&["node", "--max-old-space-size={memory_mb}", "{file}"]),
            compile: None,
            limit_address_space: false,
            fence_tags: vec![],
        },
        "rust" => RunnerDef {
            file: "main.rs".into(),
            run: s(&["./main"]),
            compile: Some(s(&[
                "rustc",
                "--edition=2021",
                "-O",
                "-o",
                "main",
                "{file}",
            ])),
            limit_address_space: true,
            fence_tags: vec![],
        },
        _ => return None,
    })
}

pub(crate) fn harness_of(lang: &str) -> Harness {
    match lang {
        "python" => Harness::Python,
        "javascript" => Harness::JavaScript,
        _ => Harness::None,
    }
}

impl Harness {
    pub fn file(self) -> Option<(&'static str, &'static str)> {
        match self {
            Harness::Python => Some(("llmtest_harness.py", include_str!("harness/harness.py"))),
            Harness::JavaScript => Some(("llmtest_harness.js", include_str!("harness/harness.js"))),
            Harness::None => None,
        }
    }

    /// The file name the harness loads the solution from.
    pub fn solution_file(self) -> &'static str {
        match self {
            Harness::Python => "solution.py",
            Harness::JavaScript => "solution.js",
            Harness::None => "",
        }
    }
}

pub(crate) fn substitute(cmd: &[String], file: &str, memory_mb: u64) -> Vec<String> {
    cmd.iter()
        .map(|a| {
            a.replace("{file}", file)
                .replace("{memory_mb}", &memory_mb.to_string())
        })
        .collect()
}
