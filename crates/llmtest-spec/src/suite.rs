//! The suite file format (`version: 1`), as written by users in YAML or JSON.
//!
//! These are the *raw* types: they mirror the file and carry source locations. The loader
//! ([`crate::load`]) turns them into resolved [`crate::Suite`]s with rendered prompts.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use crate::types::{GenParams, Mode, ReasoningPolicy, Role, SnapshotMode};

/// A suite file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "llmtest suite")]
pub struct SuiteFile {
    /// Format version; must be 1.
    #[schemars(with = "u32")]
    pub version: Spanned<u32>,
    /// The suite's name: unique in the project, used in test names, snapshots and reports.
    #[schemars(with = "String")]
    pub suite: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The configured models this suite runs against (default: every model of the active profile).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub models: Option<Vec<Spanned<String>>>,
    /// `chat` (default): messages, the server applies the chat template. `completion`: raw text.
    #[serde(default)]
    pub mode: Mode,
    /// What the suite's snapshots hold (default `summary`).
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// The k values of pass@k to report for cases with `samples` > 1.
    #[serde(default)]
    pub pass_at_k: Vec<u32>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub cases: Vec<CaseDef>,
    /// Cases imported from data files (JSONL, JSON, CSV) through a field mapping.
    #[serde(default)]
    pub cases_from: Vec<CasesFrom>,
    /// A load test instead of cases: prompt lengths × concurrency (or request rate), latency
    /// and throughput graded by bounds. Never replayed.
    #[serde(default)]
    #[schemars(with = "Option<crate::perf::PerfDef>")]
    pub perf: Option<Spanned<crate::perf::PerfDef>>,
}

/// Applied to every case of the suite.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub params: GenParams,
    /// A system prompt (template) put before every chat case's messages.
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub reasoning: ReasoningPolicy,
    /// Assertions added to every case.
    #[serde(default)]
    #[schemars(with = "Vec<AssertionSchema>")]
    pub expect: Vec<Spanned<Value>>,
    /// Default pass threshold for a case's weighted score (default: every assertion must pass).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Default number of generations per case.
    #[serde(default)]
    pub samples: Option<u32>,
    /// Variables available to every case's templates.
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// The judge model of the suite's model-graded assertions (`rubric`, `closed-qa`,
    /// `factuality`, `pairwise`) that name none; default: the profile's `judge:`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub judge: Option<Spanned<String>>,
}

/// One case.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseDef {
    /// Unique within the suite; part of the test name.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// A minijinja template: the user message (chat) or the text to continue (completion).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub prompt: Option<Spanned<String>>,
    /// A multi-turn conversation, each content a template.
    #[serde(default)]
    #[schemars(with = "Option<Vec<MessageDef>>")]
    pub messages: Option<Spanned<Vec<MessageDef>>>,
    #[serde(default)]
    pub vars: Map<String, Value>,
    #[serde(default)]
    #[schemars(with = "Vec<AssertionSchema>")]
    pub expect: Vec<Spanned<Value>>,
    /// Weight of this case in the suite's score (default 1).
    #[serde(default)]
    pub weight: Option<f64>,
    /// Pass threshold for the weighted assertion score (default: all must pass).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Generations for this case (for pass@k).
    #[serde(default)]
    pub samples: Option<u32>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Generation parameters for this case only.
    #[serde(default)]
    pub params: Option<GenParams>,
}

/// A message of a multi-turn case.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageDef {
    pub role: Role,
    pub content: String,
}

/// Import cases from a data file, like lm-evaluation-harness's `doc_to_text`/`doc_to_target`.
/// Each row's fields are template variables (`{{ question }}`); `row` is the row itself and
/// `index` its 0-based position.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CasesFrom {
    /// The data file, relative to the suite file.
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// `jsonl`, `json` (an array of objects) or `csv`; default: from the file's extension.
    #[serde(default)]
    pub format: Option<DataFormat>,
    /// Template for the case id (default: `{{ index }}` zero-padded, prefixed by the file stem).
    #[serde(default)]
    pub id: Option<String>,
    /// Template for the prompt.
    #[schemars(with = "String")]
    pub prompt: Spanned<String>,
    /// Extra variables computed per row, each a template (e.g. `target: "{{ (answer | split('####'))[1] | trim }}"`).
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// Assertions for every imported case; string values are templates over the row's variables.
    #[serde(default)]
    #[schemars(with = "Vec<AssertionSchema>")]
    pub expect: Vec<Spanned<Value>>,
    /// Import only the first N rows.
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub samples: Option<u32>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Jsonl,
    Json,
    Csv,
}

/// Schema-only view of an assertion (the real parsing is done by the grader registry, which
/// knows the parameters of every assertion type, built-in or plugin).
#[derive(JsonSchema)]
#[allow(dead_code)]
pub(crate) struct AssertionSchema {
    /// The assertion type: equals, contains, icontains, contains-any, contains-all,
    /// starts-with, regex, is-json, json-schema, json-path, number, math, code, tool-call,
    /// rubric, closed-qa, factuality, pairwise, … or a plugin's name. Prefix `not-` to negate.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Negate another assertion: `not: {type: contains, value: "…"}`.
    not: Option<Box<AssertionSchema>>,
    /// Weight in the case's score (default 1).
    weight: Option<f64>,
    /// The expected value (meaning depends on the type).
    value: Option<Value>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}
