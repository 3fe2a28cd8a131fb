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

use crate::diag::{Diagnostic, Loc};
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
    /// Paired comparisons of two of this profile's models, each a trial per suite both run:
    /// `suite::compare::BASELINE-vs-CANDIDATE`, failing on a significant regression.
    #[serde(default)]
    pub compare: Vec<CompareDef>,
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
}

/// One `compare:` entry of a profile (`llmtest compare` as a trial).
///
/// ```yaml
/// profiles:
///   quant:
///     models: [tiny-fp, tiny-q4]
///     compare:
///       - {baseline: tiny-fp, candidate: tiny-q4, max_drop: 0.02, alpha: 0.05}
/// ```
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareDef {
    /// The reference model (one of the profile's models).
    #[schemars(with = "String")]
    pub baseline: Spanned<String>,
    /// The model under test (one of the profile's models).
    #[schemars(with = "String")]
    pub candidate: Spanned<String>,
    /// The trial fails only when the candidate is significantly worse and its pass rate is
    /// lower by more than this fraction (0..1). Default 0: any significant regression fails.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub max_drop: Option<Spanned<f64>>,
    /// Significance level of the paired test (exact McNemar, or the sign test with
    /// `samples` > 1). Default 0.05.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub alpha: Option<Spanned<f64>>,
    /// Compare on these suites only (default: every suite both models run).
    #[serde(default)]
    pub suites: Option<Vec<String>>,
    /// Assert this verdict instead (`regression`, `improvement`, `no_significant_change`):
    /// the trial passes exactly when the comparison reaches it — a test that a known
    /// regression is detected. `max_drop` is then not used.
    #[serde(default)]
    pub expect: Option<ExpectVerdict>,
}

/// A verdict a `compare:` entry asserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpectVerdict {
    Regression,
    Improvement,
    NoSignificantChange,
}

/// A resolved `compare:` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareSpec {
    pub baseline: String,
    pub candidate: String,
    /// Largest tolerated drop in pass rate (fraction), default 0.
    pub max_drop: f64,
    /// Significance level, default 0.05.
    pub alpha: f64,
    /// `None`: every suite both models run.
    pub suites: Option<Vec<String>>,
    /// The verdict asserted (`expect:`), if any.
    pub expect: Option<ExpectVerdict>,
}

impl CompareSpec {
    /// `baseline-vs-candidate`, the last part of the trial name.
    pub fn name(&self) -> String {
        format!("{}-vs-{}", self.baseline, self.candidate)
    }
}

/// Resolves a profile's `compare:` entries; every bad entry is a located diagnostic.
pub(crate) fn resolve_compare(
    profile: &str,
    models: &[String],
    defs: Vec<CompareDef>,
    file: &std::path::Path,
) -> (Vec<CompareSpec>, Vec<Diagnostic>) {
    let at = |r: &serde_saphyr::Location| Loc::from_saphyr(file, r);
    let (mut out, mut bad) = (Vec::new(), Vec::new());
    for d in defs {
        let before = bad.len();
        for (role, m) in [("baseline", &d.baseline), ("candidate", &d.candidate)] {
            if !models.contains(&m.value) {
                bad.push(
                    Diagnostic::new(
                        at(&m.referenced),
                        format!(
                            "compare {role} `{}` is not one of profile `{profile}`'s models",
                            m.value
                        ),
                    )
                    .with_hint(crate::diag::unknown_name_hint(
                        &m.value,
                        models.iter().map(String::as_str),
                    )),
                );
            }
        }
        if d.baseline.value == d.candidate.value {
            bad.push(
                Diagnostic::new(
                    at(&d.candidate.referenced),
                    format!(
                        "compare candidate `{}` is its own baseline",
                        d.candidate.value
                    ),
                )
                .with_hint("name two different models of the profile"),
            );
        }
        let mut fraction = |v: &Option<Spanned<f64>>,
                            key: &str,
                            ok: fn(f64) -> bool,
                            range: &str,
                            default: f64| {
            match v {
                Some(x) if !ok(x.value) => {
                    bad.push(
                        Diagnostic::new(
                            at(&x.referenced),
                            format!("compare {key} {} is out of range", x.value),
                        )
                        .with_hint(format!("{key} is a fraction {range}, e.g. 0.05")),
                    );
                    default
                }
                Some(x) => x.value,
                None => default,
            }
        };
        let max_drop = fraction(
            &d.max_drop,
            "max_drop",
            |x| (0.0..1.0).contains(&x),
            "in [0, 1)",
            0.0,
        );
        let alpha = fraction(&d.alpha, "alpha", |x| x > 0.0 && x < 1.0, "in (0, 1)", 0.05);
        if bad.len() == before {
            out.push(CompareSpec {
                baseline: d.baseline.value,
                candidate: d.candidate.value,
                max_drop,
                alpha,
                suites: d.suites,
                expect: d.expect,
            });
        }
    }
    (out, bad)
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
#[derive(Clone, Debug, Serialize, Deserialize)]
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

impl ModelConfig {
    /// A model entry built in code (tests, programs embedding llmtest): `options` holds the
    /// backend's keys as a JSON object; one request at a time, no params, no location.
    ///
    /// # Panics
    /// If `options` is not a JSON object.
    #[track_caller]
    pub fn new(name: &str, backend: &str, options: Value) -> ModelConfig {
        let Value::Object(options) = options else {
            panic!("ModelConfig::new: options must be a JSON object, not {options}");
        };
        ModelConfig {
            name: name.to_owned(),
            backend: backend.to_owned(),
            max_concurrency: 1,
            params: GenParams::default(),
            description: None,
            suites: None,
            options,
            loc: Loc::default(),
        }
    }
}

/// A resolved profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub models: Vec<String>,
    pub mode: RunMode,
    pub allow_known_failures: bool,
    /// The default judge model (`judge:`).
    pub judge: Option<String>,
    /// `compare:` entries, validated against the profile's models.
    pub compare: Vec<CompareSpec>,
}
