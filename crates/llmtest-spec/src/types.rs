//! Data types shared by every crate: chat messages, generation parameters, tool calls.
//!
//! These are plain data (serde in both directions) so that the grader and backend crates
//! can use them without depending on the loader.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who speaks a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One rendered chat message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// What is sent to a model: chat messages (the server applies the chat template) or a raw
/// text to continue (base models, `mode: completion`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    Chat(Vec<Message>),
    Completion(String),
}

impl Prompt {
    /// The text a grader sees as "the prompt": the completion text, or the last user message.
    pub fn text(&self) -> &str {
        match self {
            Prompt::Completion(t) => t,
            Prompt::Chat(msgs) => msgs
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map(|m| m.content.as_str())
                .unwrap_or(""),
        }
    }
}

/// How a suite talks to its models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Chat messages; the server or backend applies the model's chat template.
    #[default]
    Chat,
    /// A raw text completion (base models continue the prompt).
    Completion,
}

/// Generation parameters. Every field is optional: a case's value overrides the suite's
/// `defaults`, which override the model's `params` in `llmtest.yaml`; what stays unset is
/// left to the backend.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// OpenAI `response_format`, e.g. `{type: json_object}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// OpenAI-style tool definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Passed through to the backend unchanged (vLLM's `repetition_penalty`,
    /// `chat_template_kwargs`, provider-specific fields). Merged key by key.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra_body: Map<String, Value>,
}

impl GenParams {
    /// `self` with every field that `over` sets replaced by `over`'s value.
    pub fn merged(&self, over: &GenParams) -> GenParams {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.clone().or_else(|| base.clone())
        }
        let mut extra_body = self.extra_body.clone();
        for (k, v) in &over.extra_body {
            extra_body.insert(k.clone(), v.clone());
        }
        GenParams {
            temperature: pick(&self.temperature, &over.temperature),
            top_p: pick(&self.top_p, &over.top_p),
            top_k: pick(&self.top_k, &over.top_k),
            max_tokens: pick(&self.max_tokens, &over.max_tokens),
            seed: pick(&self.seed, &over.seed),
            stop: pick(&self.stop, &over.stop),
            presence_penalty: pick(&self.presence_penalty, &over.presence_penalty),
            frequency_penalty: pick(&self.frequency_penalty, &over.frequency_penalty),
            response_format: pick(&self.response_format, &over.response_format),
            tools: pick(&self.tools, &over.tools),
            tool_choice: pick(&self.tool_choice, &over.tool_choice),
            extra_body,
        }
    }
}

/// A function call returned by a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// The arguments as the model wrote them (usually a JSON string).
    pub arguments: String,
}

/// What to do with reasoning ("thinking") output before grading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningPolicy {
    /// Grade the answer with reasoning removed (`<think>…</think>`, a lone `</think>`,
    /// the API's `reasoning_content`). An unterminated `<think>` is its own outcome.
    #[default]
    Strip,
    /// Grade the raw output, reasoning included.
    Keep,
}

/// What a suite's snapshots hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Outcome, score, extracted answer and per-assertion results (the default).
    #[default]
    Summary,
    /// As `summary`, plus the graded answer text.
    Output,
    /// No snapshot for this suite.
    Off,
}
