//! What one successful attempt produced, and the parts of a response shared by the streamed
//! and the whole form: choices being assembled, usage, error bodies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use llmtest_backend::{Choice, Usage};
use llmtest_spec::ToolCall;

use crate::url::Endpoint;

/// What an error keeps of a body.
pub(crate) const EXCERPT: usize = 400;

/// What one successful attempt produced.
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    pub choices: Vec<(u32, Choice)>,
    pub usage: Option<Usage>,
    pub ttft_ms: Option<f64>,
    pub ttfa_ms: Option<f64>,
    pub total_ms: f64,
    pub gaps_ms: Vec<f64>,
    /// Time from the first to the last token, for tokens/s.
    pub decode_ms: Option<f64>,
    pub token_events: u64,
    pub served_model: Option<String>,
    pub fingerprint: Option<String>,
    /// llama.cpp's own `timings` object (prompt and decode times measured by the server).
    pub server_timings: Option<Value>,
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Where an answer starts, given inline `<think>` blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) enum AnswerState {
    /// Only whitespace or a prefix of `<think>` so far.
    #[default]
    Undecided,
    /// Inside a leading `<think>` block; `</think>` not seen at or after this byte.
    Thinking(usize),
    /// After the block's `</think>` (ending at this byte), only whitespace so far.
    AfterThink(usize),
    Started,
}

#[derive(Debug, Default)]
pub(crate) struct ChoiceAcc {
    pub text: String,
    pub reasoning: String,
    pub tools: BTreeMap<u64, (Option<String>, String, String)>,
    pub finish: Option<String>,
    pub answer: AnswerState,
}

impl ChoiceAcc {
    /// Appends answer-channel text; true when the answer proper has now started.
    pub(crate) fn push_text(&mut self, s: &str) -> bool {
        self.text.push_str(s);
        loop {
            match self.answer {
                AnswerState::Started => return false,
                AnswerState::Undecided => {
                    let t = self.text.trim_start();
                    if t.is_empty() || "<think>".starts_with(t) {
                        return false;
                    }
                    if t.starts_with("<think>") {
                        self.answer =
                            AnswerState::Thinking(self.text.len() - t.len() + "<think>".len());
                        continue;
                    }
                    self.answer = AnswerState::Started;
                    return true;
                }
                AnswerState::Thinking(from) => {
                    let from = floor_char(&self.text, from.saturating_sub("</think>".len()));
                    match self.text[from..].find("</think>") {
                        Some(i) => {
                            self.answer = AnswerState::AfterThink(from + i + "</think>".len());
                            continue;
                        }
                        None => {
                            self.answer = AnswerState::Thinking(self.text.len());
                            return false;
                        }
                    }
                }
                AnswerState::AfterThink(end) => {
                    if self.text[end..].trim().is_empty() {
                        return false;
                    }
                    self.answer = AnswerState::Started;
                    return true;
                }
            }
        }
    }

    pub(crate) fn into_choice(self) -> Choice {
        Choice {
            text: self.text,
            reasoning: (!self.reasoning.is_empty()).then_some(self.reasoning),
            tool_calls: self
                .tools
                .into_values()
                .map(|(id, name, arguments)| ToolCall {
                    id,
                    name,
                    arguments,
                })
                .collect(),
            finish_reason: self.finish,
        }
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

pub(crate) fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub(crate) fn parse_usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    Some(Usage {
        prompt_tokens: n("prompt_tokens"),
        completion_tokens: n("completion_tokens"),
        reasoning_tokens: u
            .pointer("/completion_tokens_details/reasoning_tokens")
            .and_then(Value::as_u64),
        counted: false,
    })
}

pub(crate) fn error_message(v: &Value) -> Option<String> {
    let e = v.get("error").filter(|e| !e.is_null())?;
    Some(match e {
        Value::String(s) => s.clone(),
        _ => e
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| e.to_string()),
    })
}

pub(crate) fn excerpt(s: &str) -> String {
    let t: String = s.chars().take(EXCERPT).collect();
    if t.len() < s.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// A whole (non-streamed) response.
pub(crate) fn parse_whole(v: &Value, endpoint: Endpoint) -> Result<Attempt, String> {
    if let Some(m) = error_message(v) {
        return Err(format!("server reported an error: {}", excerpt(&m)));
    }
    let choices = v
        .get("choices")
        .and_then(Value::as_array)
        .ok_or("response has no `choices` list")?;
    if choices.is_empty() {
        return Err("response has an empty `choices` list".into());
    }
    let mut out = Vec::new();
    for (pos, c) in choices.iter().enumerate() {
        let idx = c.get("index").and_then(Value::as_u64).unwrap_or(pos as u64) as u32;
        let mut acc = ChoiceAcc {
            finish: str_field(c, "finish_reason").map(str::to_owned),
            ..Default::default()
        };
        match endpoint {
            Endpoint::Completions => {
                acc.text = c
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("choice {idx} has no `text`"))?
                    .to_owned();
            }
            Endpoint::Chat => {
                let m = c
                    .get("message")
                    .filter(|m| m.is_object())
                    .ok_or_else(|| format!("choice {idx} has no `message`"))?;
                acc.text = m
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                acc.reasoning = str_field(m, "reasoning_content")
                    .or_else(|| str_field(m, "reasoning"))
                    .unwrap_or("")
                    .to_owned();
                if let Some(tcs) = m.get("tool_calls").and_then(Value::as_array) {
                    for (i, tc) in tcs.iter().enumerate() {
                        let f = tc.get("function").ok_or_else(|| {
                            format!("choice {idx}: tool call {i} has no `function`")
                        })?;
                        let args = match f.get("arguments") {
                            Some(Value::String(s)) => s.clone(),
                            Some(other) => other.to_string(),
                            None => String::new(),
                        };
                        acc.tools.insert(
                            i as u64,
                            (
                                str_field(tc, "id").map(str::to_owned),
                                str_field(f, "name").unwrap_or("").to_owned(),
                                args,
                            ),
                        );
                    }
                }
            }
        }
        if acc.text.is_empty()
            && acc.reasoning.is_empty()
            && acc.tools.is_empty()
            && acc.finish.is_none()
        {
            return Err(format!("choice {idx} has no output and no finish_reason"));
        }
        out.push((idx, acc.into_choice()));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(Attempt {
        choices: out,
        usage: parse_usage(v),
        served_model: str_field(v, "model").map(str::to_owned),
        fingerprint: str_field(v, "system_fingerprint").map(str::to_owned),
        server_timings: v.get("timings").filter(|t| t.is_object()).cloned(),
        ..Attempt::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_think_delays_the_first_answer_token() {
        let mut c = ChoiceAcc::default();
        assert!(!c.push_text("<thi"));
        assert!(!c.push_text("nk>let me see"));
        assert!(!c.push_text(" more</th"));
        assert!(!c.push_text("ink>\n"));
        assert!(c.push_text("42"));
        assert!(!c.push_text(" more"));
        let mut plain = ChoiceAcc::default();
        assert!(!plain.push_text("  "));
        assert!(plain.push_text("Hello"));
    }

    #[test]
    fn whole_responses_parse_chat_and_completions() {
        let v: Value = serde_json::from_str(
            r#"{"model":"m","choices":[{"index":1,"message":{"content":"b"},"finish_reason":"stop"},{"index":0,"message":{"content":"<think>x</think>a","reasoning":"r","tool_calls":[{"id":"t","function":{"name":"f","arguments":{"x":1}}}]},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":1}}}"#,
        )
        .unwrap();
        let a = parse_whole(&v, Endpoint::Chat).unwrap();
        assert_eq!(a.choices[0].1.text, "<think>x</think>a");
        assert_eq!(a.choices[0].1.reasoning.as_deref(), Some("r"));
        assert_eq!(a.choices[0].1.tool_calls[0].arguments, "{\"x\":1}");
        assert!(a.choices[0].1.truncated());
        assert_eq!(a.choices[1].1.text, "b");
        assert_eq!(a.usage.unwrap().reasoning_tokens, Some(1));
        let v: Value =
            serde_json::from_str(r#"{"choices":[{"text":" 4","finish_reason":"stop"}]}"#).unwrap();
        assert_eq!(
            parse_whole(&v, Endpoint::Completions).unwrap().choices[0]
                .1
                .text,
            " 4"
        );
        assert!(parse_whole(&serde_json::json!({"choices": []}), Endpoint::Chat).is_err());
        assert!(
            parse_whole(
                &serde_json::json!({"error": {"message": "x"}}),
                Endpoint::Chat
            )
            .is_err()
        );
    }
}
