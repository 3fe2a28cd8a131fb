//! Resolved suites: what the loader hands to the runner. Prompts are rendered, defaults are
//! merged, assertions are checked; nothing here can fail any more.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::diag::Loc;
use crate::types::{GenParams, Mode, Prompt, ReasoningPolicy, SnapshotMode};

/// A loaded, validated suite. Serializable so that a one-trial process can read it from a
/// cache instead of resolving it again (a perf suite's `perf` is not kept: such suites are
/// not cached).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Suite {
    pub name: String,
    /// The suite file, relative to the project root.
    pub file: PathBuf,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// Models named by the suite (`None`: every model of the active profile).
    pub models: Option<Vec<String>>,
    pub mode: Mode,
    pub snapshot: SnapshotMode,
    pub pass_at_k: Vec<u32>,
    pub reasoning: ReasoningPolicy,
    /// In file order: the `cases:` first, then each `cases_from:` import.
    pub cases: Vec<Case>,
    /// A perf suite's load scenarios (its cases are the scenarios).
    #[serde(skip)]
    pub perf: Option<std::sync::Arc<crate::perf::PerfSpec>>,
}

/// A loaded case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    /// The rendered prompt (system message included for chat).
    pub prompt: Prompt,
    /// The case's variables (suite `defaults.vars` merged with the case's or the data row's).
    pub vars: Map<String, Value>,
    /// The suite's default assertions followed by the case's own, templates rendered.
    pub expect: Vec<AssertionSpec>,
    pub weight: f64,
    /// Pass threshold on the weighted score; `None`: every assertion must pass.
    pub threshold: Option<f64>,
    pub samples: u32,
    pub tags: Vec<String>,
    /// Suite defaults merged with the case's own parameters (model params are merged later).
    pub params: GenParams,
    pub loc: Loc,
}

/// One assertion of a case, as parsed from `expect:`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssertionSpec {
    /// The assertion type without any `not-` prefix (`contains`, `number`, …).
    pub kind: String,
    /// `not-contains` or `not: {…}`.
    pub negate: bool,
    pub weight: f64,
    /// Every other key of the assertion (`value`, `unit`, …), templates already rendered.
    pub params: Map<String, Value>,
    pub loc: Loc,
}

impl AssertionSpec {
    /// The name as written: `not-contains` for a negated `contains`.
    pub fn display_kind(&self) -> String {
        if self.negate {
            format!("not-{}", self.kind)
        } else {
            self.kind.clone()
        }
    }
}

/// Checks an assertion's type and parameters at load time, so that a typo fails before
/// anything runs. Implemented by the grader registry.
pub trait AssertionCheck {
    fn check(&self, assertion: &AssertionSpec) -> Result<(), CheckError>;
}

/// Why an assertion was rejected.
#[derive(Clone, Debug)]
pub struct CheckError {
    pub message: String,
    pub hint: Option<String>,
}

impl CheckError {
    pub fn new(message: impl Into<String>) -> Self {
        CheckError {
            message: message.into(),
            hint: None,
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}
