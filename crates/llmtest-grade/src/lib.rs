//! llmtest's graders: the [`Grader`] trait every assertion type implements, the built-in
//! text and JSON assertions, reasoning stripping and scoring. No async, no HTTP.
//!
//! ```
//! use llmtest_grade::{split_reasoning, GraderContext, GraderRegistry};
//! let split = split_reasoning("<think>53,529,941 was 2023</think>58,159,881千元", None, false);
//! assert_eq!(split.answer, "58,159,881千元");
//! let registry = GraderRegistry::with_builtins(GraderContext::default());
//! assert!(registry.kinds().any(|k| k == "contains"));
//! ```

mod grader;
pub mod judge;
pub mod math;
pub mod number;
mod reasoning;
mod registry;
mod score;
pub mod text;
mod tools;

pub use grader::{
    FnFactory, Grade, Grader, GraderContext, GraderFactory, Outcome, Sample, parse_params,
};
pub use reasoning::{Split, split_reasoning};
pub use registry::GraderRegistry;
pub use score::{AssertionResult, Verdict, grade_sample, pass_at_k};
