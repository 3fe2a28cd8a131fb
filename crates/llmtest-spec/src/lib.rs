//! llmtest's suite format: types, a strict loader with located diagnostics, templates and
//! the JSON Schemas. No async, no HTTP.
//!
//! ```no_run
//! use llmtest_spec::{Project, load_suites, AssertionCheck, AssertionSpec, CheckError};
//! struct AnyAssertion;
//! impl AssertionCheck for AnyAssertion {
//!     fn check(&self, _: &AssertionSpec) -> Result<(), CheckError> { Ok(()) }
//! }
//! let project = Project::load(std::path::Path::new(".")).map_err(|d| d.to_string())?;
//! let files = project.discover(&[]).map_err(|d| d.to_string())?;
//! let suites = load_suites(&project, &files, &AnyAssertion).map_err(|d| d.to_string())?;
//! println!("{} suites", suites.len());
//! # Ok::<(), String>(())
//! ```

mod config;
mod data;
mod diag;
mod load;
mod model;
mod perf;
mod reads;
mod schema;
mod suite;
mod template;
mod types;

pub use config::{CompareSpec, ExpectVerdict, MODEL_COMMON_KEYS, ModelConfig, Profile, RunMode};
pub use diag::{Diagnostic, Diagnostics, Loc, did_you_mean, unknown_name_hint};
pub use load::{
    CONFIG_FILE, Project, load_suites, load_suites_filtered, load_suites_named, parse_assertion,
};
pub use model::{AssertionCheck, AssertionSpec, Case, CheckError, Suite};
pub use perf::{
    Bound, PERF_DISTRIBUTIONS, PERF_SCALARS, PERF_STATS, PerfCheck, PerfSpec, Scenario, Slo,
    perf_metric_names,
};
pub use reads::files_read;
pub use schema::{config_schema, suite_schema};
/// The model-graded assertion types (a judge model grades them; see `llmtest_grade::judge`).
pub const JUDGED_KINDS: [&str; 4] = ["rubric", "closed-qa", "factuality", "pairwise"];

pub use types::{GenParams, Message, Mode, Prompt, ReasoningPolicy, Role, SnapshotMode, ToolCall};
