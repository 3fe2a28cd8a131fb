//! The SSE state machine: a stream's chunks assembled into choices, usage and timings.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use llmtest_backend::Usage;

use crate::response::{
    AnswerState, Attempt, ChoiceAcc, error_message, excerpt, ms, parse_usage, str_field,
};
use crate::sse::Event;
use crate::url::Endpoint;

/// Most gaps kept per response.
const MAX_GAPS: usize = 100_000;

/// Assembles a stream's chunks.
pub(crate) struct StreamState {
    endpoint: Endpoint,
    choices: BTreeMap<u32, ChoiceAcc>,
    usage: Option<Usage>,
    first_token: Option<Instant>,
    first_answer: Option<Instant>,
    last_token: Option<Instant>,
    gaps: Vec<f64>,
    token_events: u64,
    pub done: bool,
    pub end: Option<Instant>,
    model: Option<String>,
    fingerprint: Option<String>,
    server_timings: Option<Value>,
}

impl StreamState {
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        StreamState {
            endpoint,
            choices: BTreeMap::new(),
            usage: None,
            first_token: None,
            first_answer: None,
            last_token: None,
            gaps: Vec::new(),
            server_timings: None,
            token_events: 0,
            done: false,
            end: None,
            model: None,
            fingerprint: None,
        }
    }

    pub(crate) fn on_event(&mut self, ev: &Event, at: Instant) -> Result<(), String> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if ev.event == "error" {
            return Err(format!(
                "server reported an error mid-stream: {}",
                excerpt(data)
            ));
        }
        if data.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| format!("malformed chunk ({e})"))?;
        if let Some(m) = error_message(&v) {
            return Err(format!(
                "server reported an error mid-stream: {}",
                excerpt(&m)
            ));
        }
        if self.model.is_none() {
            self.model = str_field(&v, "model").map(str::to_owned);
        }
        if let Some(fp) = str_field(&v, "system_fingerprint") {
            self.fingerprint = Some(fp.to_owned());
        }
        if let Some(u) = parse_usage(&v) {
            self.usage = Some(u);
        }
        if let Some(t) = v.get("timings").filter(|t| t.is_object()) {
            self.server_timings = Some(t.clone());
        }
        let Some(choices) = v.get("choices") else {
            return if v.get("usage").is_some() {
                Ok(())
            } else {
                Err("chunk has neither `choices` nor `usage`".into())
            };
        };
        let choices = choices
            .as_array()
            .ok_or("chunk's `choices` is not a list")?;
        let mut token = false;
        let mut answer = false;
        for c in choices {
            let idx = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            if idx > 1024 {
                return Err(format!("choice index {idx} out of range"));
            }
            let acc = self.choices.entry(idx as u32).or_default();
            if let Some(f) = str_field(c, "finish_reason") {
                acc.finish = Some(f.to_owned());
            }
            let (content, delta) = match self.endpoint {
                Endpoint::Completions => (c.get("text"), None),
                Endpoint::Chat => {
                    let d = c.get("delta").filter(|d| d.is_object());
                    (d.and_then(|d| d.get("content")), d)
                }
            };
            if let Some(s) = content.and_then(Value::as_str).filter(|s| !s.is_empty()) {
                token = true;
                answer |= acc.push_text(s);
            }
            let Some(d) = delta else { continue };
            // vLLM sends the same text as `reasoning_content` and `reasoning`: take one.
            if let Some(r) = str_field(d, "reasoning_content").or_else(|| str_field(d, "reasoning"))
            {
                token = true;
                acc.reasoning.push_str(r);
            }
            if let Some(tcs) = d.get("tool_calls").and_then(Value::as_array) {
                for (pos, tc) in tcs.iter().enumerate() {
                    let i = tc
                        .get("index")
                        .and_then(Value::as_u64)
                        .unwrap_or(pos as u64);
                    let slot = acc.tools.entry(i).or_default();
                    if let Some(id) = str_field(tc, "id") {
                        slot.0 = Some(id.to_owned());
                    }
                    if let Some(f) = tc.get("function") {
                        if let Some(n) = str_field(f, "name") {
                            slot.1.push_str(n);
                        }
                        if let Some(a) = str_field(f, "arguments") {
                            slot.2.push_str(a);
                        }
                    }
                    token = true;
                    answer = true;
                    acc.answer = AnswerState::Started;
                }
            }
        }
        if token {
            self.token_events += 1;
            if let Some(last) = self.last_token {
                if self.gaps.len() < MAX_GAPS {
                    self.gaps.push(ms(at.duration_since(last)));
                }
            } else {
                self.first_token = Some(at);
            }
            self.last_token = Some(at);
        }
        if answer && self.first_answer.is_none() {
            self.first_answer = Some(at);
        }
        Ok(())
    }

    pub(crate) fn finish(self, t0: Instant) -> Result<Attempt, String> {
        if self.choices.is_empty() {
            return Err("stream ended without any choice".into());
        }
        for (i, c) in &self.choices {
            if c.text.is_empty()
                && c.reasoning.is_empty()
                && c.tools.is_empty()
                && c.finish.is_none()
            {
                return Err(format!(
                    "choice {i} ended with no output and no finish_reason"
                ));
            }
        }
        let end = self.end.unwrap_or_else(Instant::now);
        let since = |t: Option<Instant>| t.map(|t| ms(t.duration_since(t0)));
        let decode_ms = match (self.first_token, self.last_token) {
            (Some(a), Some(b)) if b > a => Some(ms(b.duration_since(a))),
            _ => None,
        };
        Ok(Attempt {
            choices: self
                .choices
                .into_iter()
                .map(|(i, c)| (i, c.into_choice()))
                .collect(),
            usage: self.usage,
            ttft_ms: since(self.first_token),
            ttfa_ms: since(self.first_answer),
            total_ms: ms(end.duration_since(t0)),
            gaps_ms: self.gaps,
            decode_ms,
            token_events: self.token_events,
            served_model: self.model,
            fingerprint: self.fingerprint,
            server_timings: self.server_timings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use llmtest_spec::ToolCall;

    fn ev(data: &str) -> Event {
        Event {
            event: String::new(),
            data: data.into(),
        }
    }

    #[test]
    fn stream_assembles_reasoning_tools_and_usage() {
        let t0 = Instant::now();
        let mut s = StreamState::new(Endpoint::Chat);
        let chunks = [
            r#"{"model":"m1","choices":[{"index":0,"delta":{"role":"assistant"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"think","reasoning":"think"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"ok"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"get","arguments":"{\"a\""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4}}"#,
            "[DONE]",
        ];
        for (i, c) in chunks.iter().enumerate() {
            s.on_event(&ev(c), t0 + Duration::from_millis(10 * i as u64))
                .unwrap();
        }
        assert!(s.done);
        s.end = Some(t0 + Duration::from_millis(60));
        let a = s.finish(t0).unwrap();
        let c = &a.choices[0].1;
        assert_eq!(c.text, "ok");
        assert_eq!(
            c.reasoning.as_deref(),
            Some("think"),
            "one channel, not both copies"
        );
        assert_eq!(
            c.tool_calls,
            vec![ToolCall {
                id: Some("c1".into()),
                name: "get".into(),
                arguments: "{\"a\":1}".into()
            }]
        );
        assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(a.usage.unwrap().completion_tokens, Some(4));
        assert_eq!(a.ttft_ms, Some(10.0));
        assert_eq!(a.ttfa_ms, Some(20.0));
        assert_eq!(a.gaps_ms, vec![10.0, 10.0, 10.0]);
        assert_eq!(a.served_model.as_deref(), Some("m1"));
    }

    #[test]
    fn malformed_and_error_chunks_are_errors() {
        let t0 = Instant::now();
        let mut s = StreamState::new(Endpoint::Chat);
        assert!(
            s.on_event(&ev("{\"choices\": [ {"), t0)
                .unwrap_err()
                .starts_with("malformed chunk")
        );
        let e = s
            .on_event(&ev(r#"{"error":{"message":"out of memory"}}"#), t0)
            .unwrap_err();
        assert!(e.contains("out of memory"), "{e}");
        let e = s
            .on_event(
                &Event {
                    event: "error".into(),
                    data: "boom".into(),
                },
                t0,
            )
            .unwrap_err();
        assert!(e.contains("boom"));
        assert!(s.on_event(&ev(r#"{"id":"x"}"#), t0).is_err());
    }

    #[test]
    fn empty_streams_are_errors_not_empty_answers() {
        let t0 = Instant::now();
        let s = StreamState::new(Endpoint::Chat);
        assert!(s.finish(t0).is_err());
        let mut s = StreamState::new(Endpoint::Chat);
        s.on_event(
            &ev(r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#),
            t0,
        )
        .unwrap();
        assert!(s.finish(t0).unwrap_err().contains("no output"));
        // An empty answer the model chose to give (finish_reason stop) is an answer.
        let mut s = StreamState::new(Endpoint::Chat);
        s.on_event(
            &ev(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
            t0,
        )
        .unwrap();
        assert_eq!(s.finish(t0).unwrap().choices[0].1.text, "");
    }
}
