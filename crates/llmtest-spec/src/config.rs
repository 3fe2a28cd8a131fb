//! The project config, `llmtest.yaml` at the project root.
//!
//! ```yaml
//! version: 1
//! default_profile: ci
//! models:
//!   qwen2.5-7b-vllm:
//!     backend: openai          # which registered backend serves it
//!     max_concurrency: 8       # requests in flight for this model (default 4)
//!     params: {temperature: 0}
//!     provider: vllm           # every other key belongs to the backend
//!     base_url: http://127.0.0.1:8000/v1
//! profiles:
//!   ci: {models: [qwen2.5-7b-vllm], mode: replay}
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use crate::diag::Loc;
use crate::types::GenParams;

/// The `llmtest.yaml` file as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "llmtest project config")]
pub struct ConfigFile {
    /// Format version; must be 1.
    #[schemars(with = "u32")]
    pub version: Spanned<u32>,
    /// Directories (or single files) holding suites, relative to the project root. Default `[suites]`.
    #[serde(default)]
    pub suites: Option<Vec<String>>,
    /// Where snapshots live. Default `snapshots`.
    #[serde(default)]
    pub snapshots: Option<String>,
    /// Where cassettes live. Default `fixtures/cassettes`.
    #[serde(default)]
    pub cassettes: Option<String>,
    /// Where run results are written. Default `target/llmtest`.
    #[serde(default)]
    pub results: Option<String>,
    /// The profile used when none is named (`--profile` or `LLMTEST_PROFILE`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub default_profile: Option<Spanned<String>>,
    /// Named models. Keys other than the common ones are the backend's own options.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ModelSchema>")]
    pub models: BTreeMap<String, Spanned<Value>>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileDef>,
}

/// A named set of models and how to reach them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileDef {
    /// The models this profile runs (default: all configured models).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub models: Option<Vec<Spanned<String>>>,
    /// `live` (default): call the backends. `replay`: answer from cassettes, offline.
    /// `record`: call the backends and write cassettes.
    #[serde(default)]
    pub mode: RunMode,
    /// When true, a case trial whose failure is already recorded in the committed snapshot
    /// passes (a known failure of a weak model); new failures still fail their trial, and
    /// any change in either direction fails the suite's snapshot trial. Default false.
    #[serde(default)]
    pub allow_known_failures: bool,
    /// The judge model of model-graded assertions (`rubric`, `closed-qa`, `factuality`,
    /// `pairwise`) that name none themselves.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub judge: Option<Spanned<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
}

/// How a profile reaches its models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    #[default]
    Live,
    Replay,
    Record,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Live => "live",
            RunMode::Replay => "replay",
            RunMode::Record => "record",
        }
    }
}

/// Schema-only view of a model entry.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub(crate) struct ModelSchema {
    /// The registered backend: `openai`, `onnx`, `exec`, `outputs`, `replay`, or a plugin's.
    backend: String,
    /// Requests in flight for this model (default 4).
    max_concurrency: Option<u32>,
    /// Default generation parameters for this model.
    params: Option<GenParams>,
    description: Option<String>,
    /// Run this model only on these suites (an answer set for one benchmark, a model only
    /// meant for some suites). Default: every suite.
    suites: Option<Vec<String>>,
    /// Backend-specific options.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// The keys every model entry may have; the rest go to the backend.
pub const MODEL_COMMON_KEYS: &[&str] = &[
    "backend",
    "max_concurrency",
    "params",
    "description",
    "suites",
];

/// A resolved model entry.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// The name in `llmtest.yaml` (used in test names, snapshots, cassettes).
    pub name: String,
    pub backend: String,
    pub max_concurrency: usize,
    pub params: GenParams,
    pub description: Option<String>,
    /// Run this model only on these suites (`None`: every suite).
    pub suites: Option<Vec<String>>,
    /// Backend-specific keys, to be parsed strictly by the backend factory.
    pub options: Map<String, Value>,
    pub loc: Loc,
}

/// A resolved profile.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub models: Vec<String>,
    pub mode: RunMode,
    pub allow_known_failures: bool,
    /// The default judge model (`judge:`).
    pub judge: Option<String>,
}
