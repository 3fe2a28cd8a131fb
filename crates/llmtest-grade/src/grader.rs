//! The grader interface. Every assertion type, built-in or plugin, is a [`GraderFactory`]
//! registered by name; the factory checks its parameters when suites load (so typos fail
//! before anything runs) and builds a [`Grader`] that judges one generation at a time.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use llmtest_spec::{Case, CheckError, ToolCall};

/// What happened to one generation (or, aggregated, to one case). Only [`Outcome::Fail`]
/// means the model was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    /// A wrong answer.
    Fail,
    /// The model ran out of tokens while still thinking (`<think>` never closed).
    UnterminatedReasoning,
    /// Generated code did not finish within the sandbox's time limit.
    CodeTimeout,
    /// Generated code crashed, failed to compile or hit a resource limit.
    CodeError,
    /// The model could not be asked or graded: timeout, HTTP 429/5xx, dropped stream,
    /// missing GPU, sandbox failure, cassette miss. Not the model's fault.
    InfraError,
    /// Not run (no credentials, filtered out).
    Skipped,
    /// A model-graded assertion could not be graded: the judge model failed (timeout,
    /// 429/5xx) or its verdict could not be read. Neither the candidate's fault nor a score.
    JudgeError,
    /// Repeated judge verdicts (`judge_samples`) fall on both sides of the pass threshold:
    /// neither a pass nor a fail until a person looks.
    Unstable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::UnterminatedReasoning => "unterminated_reasoning",
            Outcome::CodeTimeout => "code_timeout",
            Outcome::CodeError => "code_error",
            Outcome::InfraError => "infra_error",
            Outcome::Skipped => "skipped",
            Outcome::JudgeError => "judge_error",
            Outcome::Unstable => "unstable",
        }
    }

    /// Did the model answer wrongly (as opposed to passing, or an infrastructure problem)?
    pub fn is_model_failure(self) -> bool {
        matches!(
            self,
            Outcome::Fail
                | Outcome::UnterminatedReasoning
                | Outcome::CodeTimeout
                | Outcome::CodeError
        )
    }

    /// Could the case not be graded for reasons outside the candidate model (its backend or
    /// the judge's)?
    pub fn is_infra(self) -> bool {
        matches!(self, Outcome::InfraError | Outcome::JudgeError)
    }

    /// Which outcome speaks for several (an assertion's for its sample, a sample's for its
    /// case): the higher, the further the cause is from a plain wrong answer. An
    /// infrastructure failure (the candidate's backend, then the judge's) outranks an
    /// undecided judge, which outranks a code problem, which outranks unterminated reasoning;
    /// a pass, a skip and a wrong answer rank 0.
    pub fn severity(self) -> u8 {
        match self {
            Outcome::Pass | Outcome::Fail | Outcome::Skipped => 0,
            Outcome::UnterminatedReasoning => 1,
            Outcome::CodeError => 2,
            Outcome::CodeTimeout => 3,
            Outcome::Unstable => 4,
            Outcome::JudgeError => 5,
            Outcome::InfraError => 6,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One generation, as a grader sees it.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    pub suite: &'a str,
    pub model: &'a str,
    /// The case: id, rendered prompt, variables, parameters.
    pub case: &'a Case,
    /// 0-based sample number (cases with `samples: n`).
    pub index: u32,
    /// The text exactly as the model produced it.
    pub output: &'a str,
    /// What is graded: the output with reasoning removed (per the suite's reasoning policy).
    pub answer: &'a str,
    /// The reasoning ("thinking") text, inline or from the API's separate channel.
    pub reasoning: Option<&'a str>,
    pub tool_calls: &'a [ToolCall],
    /// Asks judge models, for model-graded assertions (`None` where no runner provides one:
    /// such assertions then report a `judge_error`).
    pub judge: Option<&'a dyn crate::judge::Judge>,
}

impl<'a> Sample<'a> {
    /// The first generation of a case whose whole output is `answer` (no reasoning, no tool
    /// calls): for tests, benches and graders that grade text they already have.
    pub fn of_answer(
        suite: &'a str,
        model: &'a str,
        case: &'a Case,
        answer: &'a str,
    ) -> Sample<'a> {
        Sample {
            suite,
            model,
            case,
            index: 0,
            output: answer,
            answer,
            reasoning: None,
            tool_calls: &[],
            judge: None,
        }
    }
}

/// A grader's judgement of one generation. This is data, not an error: a wrong answer is a
/// `Grade` with `pass: false`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    pub pass: bool,
    /// 0.0..=1.0 (partial credit, e.g. the fraction of unit tests passed).
    pub score: f64,
    /// What was expected, for people (`58,159,881千元 ±0.1%`).
    pub expected: String,
    /// What was found and how it was read (`535.3亿元 = 53,530,000千元`).
    pub found: String,
    /// The value the grader extracted from the answer, if it extracts one (for snapshots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extracted: Option<String>,
    /// Set when a failure is not an ordinary wrong answer (code timeout, sandbox failure →
    /// `InfraError`, …). `None` means the usual pass/fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Structured detail for reports (per-test results, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

impl Grade {
    /// A plain pass/fail with score 1 or 0.
    pub fn binary(pass: bool, expected: impl Into<String>, found: impl Into<String>) -> Grade {
        Grade {
            pass,
            score: if pass { 1.0 } else { 0.0 },
            expected: expected.into(),
            found: found.into(),
            ..Grade::default()
        }
    }

    pub fn with_extracted(mut self, e: impl Into<String>) -> Grade {
        self.extracted = Some(e.into());
        self
    }
}

/// Judges one generation. May block (code execution): the runner calls it off the async
/// runtime, in parallel across generations.
pub trait Grader: Send + Sync {
    fn grade(&self, sample: &Sample<'_>) -> Grade;
}

/// Where a grader is built: paths for graders that read files.
#[derive(Clone, Debug, Default)]
pub struct GraderContext {
    /// The project root (suites' relative paths resolve against it).
    pub root: PathBuf,
}

/// Builds graders of one assertion type from their parameters.
pub trait GraderFactory: Send + Sync {
    /// The assertion type name used in suites (`contains`, `number`, …).
    fn kind(&self) -> &str;
    /// Checks the parameters (every key of the assertion except `type`, `not`, `weight`) and
    /// builds the grader. Reject unknown keys with a hint: see [`parse_params`].
    fn build(
        &self,
        params: &Map<String, Value>,
        ctx: &GraderContext,
    ) -> Result<Arc<dyn Grader>, CheckError>;
}

/// Deserializes an assertion's parameters into `T` (use `#[serde(deny_unknown_fields)]`),
/// turning serde's message into a [`CheckError`] with a "did you mean" hint.
pub fn parse_params<T: serde::de::DeserializeOwned>(
    params: &Map<String, Value>,
) -> Result<T, CheckError> {
    serde_json::from_value(Value::Object(params.clone())).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        let mut err = CheckError::new(msg.clone());
        if let Some(rest) = msg.strip_prefix("unknown field `")
            && let Some((field, expected)) = rest.split_once('`')
        {
            let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            err = CheckError::new(format!("unknown key `{field}`")).with_hint(
                llmtest_spec::unknown_name_hint(field, known.iter().copied()),
            );
        }
        err
    })
}

/// A plain function as a grader factory, for plugins and simple built-ins.
pub struct FnFactory<F> {
    kind: String,
    build: F,
}

impl<F> FnFactory<F>
where
    F: Fn(&Map<String, Value>, &GraderContext) -> Result<Arc<dyn Grader>, CheckError> + Send + Sync,
{
    pub fn new(kind: impl Into<String>, build: F) -> Self {
        FnFactory {
            kind: kind.into(),
            build,
        }
    }
}

impl<F> GraderFactory for FnFactory<F>
where
    F: Fn(&Map<String, Value>, &GraderContext) -> Result<Arc<dyn Grader>, CheckError> + Send + Sync,
{
    fn kind(&self) -> &str {
        &self.kind
    }
    fn build(
        &self,
        params: &Map<String, Value>,
        ctx: &GraderContext,
    ) -> Result<Arc<dyn Grader>, CheckError> {
        (self.build)(params, ctx)
    }
}

impl<F> Grader for F
where
    F: Fn(&Sample<'_>) -> Grade + Send + Sync,
{
    fn grade(&self, sample: &Sample<'_>) -> Grade {
        self(sample)
    }
}
