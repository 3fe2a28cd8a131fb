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

/// A case as a loaded suite would hold it, for the graders' unit tests.
#[cfg(test)]
pub(crate) fn test_case(prompt: &str, params: llmtest_spec::GenParams) -> llmtest_spec::Case {
    llmtest_spec::Case {
        id: "c".into(),
        prompt: llmtest_spec::Prompt::Completion(prompt.into()),
        vars: serde_json::Map::new(),
        expect: vec![],
        weight: 1.0,
        threshold: None,
        samples: 1,
        tags: vec![],
        params,
        loc: llmtest_spec::Loc::new("s.yaml", 1, 1),
    }
}

pub use grader::{
    FnFactory, Grade, Grader, GraderContext, GraderFactory, Outcome, Sample, parse_params,
};
pub use reasoning::{Split, split_reasoning};
pub use registry::GraderRegistry;
pub use score::{AssertionResult, Verdict, grade_sample, grade_sample_with, pass_at_k};
