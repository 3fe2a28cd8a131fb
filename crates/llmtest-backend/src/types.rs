//! What goes to a backend and what comes back.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use llmtest_spec::{GenParams, ModelConfig, Prompt, ToolCall};

/// One request: `n` generations for one case on one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The model's name in `llmtest.yaml`.
    pub model: String,
    pub suite: String,
    pub case_id: String,
    pub prompt: Prompt,
    /// Model params, overridden by suite defaults, overridden by the case.
    pub params: GenParams,
    /// Generations wanted (the case's `samples`); the response must hold this many choices.
    pub n: u32,
}

/// One generation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The text as produced (inline `<think>` blocks included).
    pub text: String,
    /// The API's separate reasoning channel (`reasoning_content`, `reasoning`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `length`, `tool_calls`, … as the backend reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

impl Choice {
    pub fn text(text: impl Into<String>) -> Choice {
        Choice {
            text: text.into(),
            finish_reason: Some("stop".into()),
            ..Choice::default()
        }
    }
    /// Generation stopped at the token limit.
    pub fn truncated(&self) -> bool {
        self.finish_reason.as_deref() == Some("length")
    }
}

/// Token counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// True when the counts were counted by llmtest (stream chunks, tokenizer) rather than
    /// reported by the server.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counted: bool,
}

/// Latency figures, all in milliseconds from the moment the request was sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Time to the first token on any channel (reasoning included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Time to the first token of the answer proper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfa_ms: Option<f64>,
    /// End to end.
    pub total_ms: f64,
    /// Gaps between successive streamed tokens (or chunks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps_ms: Vec<f64>,
    /// Output tokens per second after the first token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
    /// These figures were recorded earlier and replayed: never report them as latency.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// A backend's answer to a [`Request`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub timings: Timings,
    /// Facts about what served the request (provider, model id, execution provider, GPU,
    /// server version, replica). Never secrets.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub facts: Map<String, Value>,
}

impl Response {
    /// Answers with no token counts and no streaming timings: only the time since `start`
    /// (backends that read answers from a file or a command).
    pub fn untimed(choices: Vec<Choice>, start: std::time::Instant) -> Response {
        Response {
            choices,
            usage: None,
            timings: Timings {
                total_ms: start.elapsed().as_secs_f64() * 1e3,
                ..Timings::default()
            },
            facts: Map::new(),
        }
    }
}

/// Why a request could not be answered. Never a wrong answer: the model was not (fully) heard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfraKind {
    /// Connect, read or overall timeout (a stalled stream included).
    Timeout,
    /// HTTP 429 after the retries were spent.
    RateLimited,
    /// HTTP 5xx after the retries were spent.
    Server,
    /// HTTP 4xx other than 429 (bad request, unknown model, auth): a configuration problem.
    Client,
    /// Connection refused or reset.
    Connection,
    /// A broken stream: malformed chunk, missing `[DONE]`, truncated body, mid-stream error.
    Stream,
    /// No GPU, no CUDA, no runtime library where one was required.
    Unavailable,
    /// Replay found no cassette (or `outputs` no answer) for this request.
    Missing,
    /// An `exec` model's process failed.
    Process,
    /// The backend has no answer for this case by design (an `outputs` file that covers
    /// only some cases, with `missing: skip`): the case is skipped, not failed.
    Skip,
    Other,
}

impl InfraKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            InfraKind::Timeout => "timeout",
            InfraKind::RateLimited => "rate_limited",
            InfraKind::Server => "server",
            InfraKind::Client => "client",
            InfraKind::Connection => "connection",
            InfraKind::Stream => "stream",
            InfraKind::Unavailable => "unavailable",
            InfraKind::Missing => "missing",
            InfraKind::Process => "process",
            InfraKind::Skip => "skip",
            InfraKind::Other => "other",
        }
    }
}

/// An infrastructure failure, with the HTTP status and an excerpt of the body when there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct InfraError {
    pub kind: InfraKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// At most a few hundred characters of the response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Retries made before giving up.
    #[serde(default)]
    pub retries: u32,
}

impl InfraError {
    pub fn new(kind: InfraKind, message: impl Into<String>) -> Self {
        InfraError {
            kind,
            message: message.into(),
            status: None,
            body: None,
            retries: 0,
        }
    }
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    pub fn with_body(mut self, body: &str) -> Self {
        let t: String = body.chars().take(400).collect();
        self.body = Some(if body.chars().count() > 400 {
            format!("{t}…")
        } else {
            t
        });
        self
    }
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
}

impl fmt::Display for InfraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if self.retries > 0 {
            write!(
                f,
                " after {} retr{}",
                self.retries,
                if self.retries == 1 { "y" } else { "ies" }
            )?;
        }
        if let Some(b) = &self.body {
            write!(f, "; body: {b}")?;
        }
        Ok(())
    }
}

/// Why a model's backend could not be created.
#[derive(Clone, Debug, thiserror::Error)]
pub enum BackendError {
    /// A credential's environment variable is unset: the model's trials are skipped.
    #[error("environment variable `{var}` is not set")]
    MissingCredential { var: String },
    /// The model's options are wrong (unknown key, bad value): invalid config.
    #[error("{message}")]
    Config {
        message: String,
        hint: Option<String>,
    },
    /// The backend cannot run here (no GPU, no runtime library, server failed to start):
    /// an infrastructure error for each of the model's trials.
    #[error("{0}")]
    Unavailable(String),
}

impl BackendError {
    pub fn config(message: impl Into<String>) -> Self {
        BackendError::Config {
            message: message.into(),
            hint: None,
        }
    }
}

/// Where backends are created.
#[derive(Clone, Debug, Default)]
pub struct BackendContext {
    /// The project root: relative paths in model options resolve against it.
    pub root: PathBuf,
    /// Directory of cassettes (absolute).
    pub cassettes: PathBuf,
}

/// A model server or runtime. Implementations must be cancel-safe and must not retry
/// forever: every loop is bounded in count and time.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// `req.n` generations for one case.
    async fn generate(&self, req: &Request) -> Result<Response, InfraError>;

    /// Facts about the backend as a whole for the results (server start-up time, peak
    /// memory, GPU), gathered after the run. Never secrets.
    fn facts(&self) -> Map<String, Value> {
        Map::new()
    }

    /// Called once at the end of a run (also after failures): stop managed servers, flush
    /// recordings.
    async fn shutdown(&self) {}

    /// The number of tokens of `text` by the model's own tokenizer, when the backend can tell
    /// (an in-process tokenizer, a server's `/tokenize`); `None` when it cannot. Perf suites
    /// size their prompts with it.
    async fn count_tokens(&self, _text: &str) -> Option<Result<usize, InfraError>> {
        None
    }
}

/// Creates a model's backend from its `llmtest.yaml` entry.
pub trait BackendFactory: Send + Sync {
    /// The name used in `backend:` (`openai`, `onnx`, …).
    fn name(&self) -> &str;
    /// Parse `model.options` strictly (unknown keys are errors with a hint) and build.
    fn create(
        &self,
        model: &ModelConfig,
        ctx: &BackendContext,
    ) -> Result<Arc<dyn Backend>, BackendError>;
    /// True for backends that never leave the machine and are deterministic (`outputs`):
    /// replay mode uses them directly instead of cassettes.
    fn offline(&self) -> bool {
        false
    }
}

/// Deserializes a model's backend options into `T` (use `#[serde(deny_unknown_fields)]`),
/// with a "did you mean" hint for unknown keys.
pub fn parse_options<T: serde::de::DeserializeOwned>(
    model: &ModelConfig,
) -> Result<T, BackendError> {
    serde_json::from_value(Value::Object(model.options.clone())).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        if let Some(rest) = msg.strip_prefix("unknown field `")
            && let Some((field, expected)) = rest.split_once('`')
        {
            let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            return BackendError::Config {
                message: format!(
                    "model `{}`: unknown key `{field}` for backend `{}`",
                    model.name, model.backend
                ),
                hint: Some(llmtest_spec::unknown_name_hint(
                    field,
                    known.iter().copied(),
                )),
            };
        }
        BackendError::Config {
            message: format!("model `{}`: {msg}", model.name),
            hint: None,
        }
    })
}
