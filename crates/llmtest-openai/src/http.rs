//! One HTTP attempt: the request body, the streamed or whole response, and what went wrong.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use llmtest_backend::{Choice, InfraError, InfraKind, Secret, Usage};
use llmtest_spec::{GenParams, Prompt, ToolCall};

use crate::options::Resolved;
use crate::sse::{Event, SseParser};

/// Longest SSE line and event accepted (a tool call's arguments can be long).
const MAX_LINE: usize = 4 << 20;
/// Largest response body accepted, streamed or not.
const MAX_BODY: usize = 64 << 20;
/// Most gaps kept per response.
const MAX_GAPS: usize = 100_000;
/// What an error keeps of a body.
const EXCERPT: usize = 400;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Chat,
    Completions,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
        }
    }
}

/// A URL fit for messages: no user-info, no query.
pub(crate) fn display_url(u: &str) -> String {
    match reqwest::Url::parse(&u.replace("{port}", "0")) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            let s = url.to_string();
            let s = if u.contains("{port}") {
                s.replacen(":0", ":{port}", 1)
            } else {
                s
            };
            s.trim_end_matches('/').to_owned()
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}

/// The JSON body of a request for `n` choices.
pub(crate) fn build_body(
    r: &Resolved,
    prompt: &Prompt,
    params: &GenParams,
    n: u32,
    stream: bool,
) -> (Endpoint, Value) {
    let mut b = Map::new();
    b.insert("model".into(), json!(r.served_model));
    let endpoint = match prompt {
        Prompt::Chat(msgs) => {
            let msgs: Vec<Value> = msgs
                .iter()
                .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
                .collect();
            b.insert("messages".into(), Value::Array(msgs));
            Endpoint::Chat
        }
        Prompt::Completion(text) => {
            b.insert("prompt".into(), json!(text));
            Endpoint::Completions
        }
    };
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            b.insert(k.to_owned(), v);
        }
    };
    put("temperature", params.temperature.map(|v| json!(v)));
    put("top_p", params.top_p.map(|v| json!(v)));
    put("top_k", params.top_k.map(|v| json!(v)));
    let mt_field = if endpoint == Endpoint::Chat {
        r.max_tokens_field.as_str()
    } else {
        "max_tokens"
    };
    put(mt_field, params.max_tokens.map(|v| json!(v)));
    put("seed", params.seed.map(|v| json!(v)));
    put("stop", params.stop.as_ref().map(|v| json!(v)));
    put(
        "presence_penalty",
        params.presence_penalty.map(|v| json!(v)),
    );
    put(
        "frequency_penalty",
        params.frequency_penalty.map(|v| json!(v)),
    );
    put("response_format", params.response_format.clone());
    put("tools", params.tools.as_ref().map(|v| json!(v)));
    put("tool_choice", params.tool_choice.clone());
    if n > 1 {
        put("n", Some(json!(n)));
    }
    if stream {
        put("stream", Some(json!(true)));
        if r.include_usage {
            put("stream_options", Some(json!({"include_usage": true})));
        }
    }
    for (k, v) in &params.extra_body {
        b.insert(k.clone(), v.clone());
    }
    (endpoint, Value::Object(b))
}

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
}

/// A failed attempt and what to do about it.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: InfraError,
    pub retry: bool,
    /// The server's `Retry-After` (or `retry-after-ms`).
    pub retry_after: Option<Duration>,
    /// The replica could not be reached: try another one.
    pub replica_down: bool,
    /// The connection closed before any response: most likely a kept-alive connection the
    /// server had just closed (llama-server closes after every stream).
    pub stale: bool,
}

impl Failure {
    fn new(kind: InfraKind, message: String) -> Self {
        Failure {
            error: InfraError::new(kind, message),
            retry: false,
            retry_after: None,
            replica_down: false,
            stale: false,
        }
    }
    fn retry(mut self) -> Self {
        self.retry = true;
        self
    }
    fn status(mut self, s: u16) -> Self {
        self.error = self.error.with_status(s);
        self
    }
    fn body(mut self, b: &str, key: Option<&Secret>) -> Self {
        self.error = self.error.with_body(&scrub(b, key));
        self
    }
}

/// Removes the key (and any secret-looking environment value) from text we keep.
pub(crate) fn scrub(text: &str, key: Option<&Secret>) -> String {
    let mut t = text.to_owned();
    if let Some(k) = key
        && !k.expose().is_empty()
    {
        t = t.replace(k.expose(), "[REDACTED]");
    }
    llmtest_backend::redact_secrets(&t)
}

/// The whole error chain of a reqwest error, without the URL's query (never holds the key:
/// the key travels in a header).
fn chain(e: &reqwest::Error) -> String {
    let mut s = e.without_url_ref().to_string();
    let mut src = std::error::Error::source(e);
    let mut depth = 0;
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
        depth += 1;
        if depth > 8 {
            break;
        }
    }
    s
}

/// hyper's "connection closed before message completed", somewhere in the chain.
fn closed_before_response(e: &reqwest::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    for _ in 0..8 {
        let Some(inner) = src else { return false };
        if let Some(h) = inner.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message();
        }
        src = inner.source();
    }
    false
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}
impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        // reqwest puts the URL in its message; we name the replica ourselves.
        let mut e = String::new();
        if self.is_connect() {
            e.push_str("cannot connect");
        } else if self.is_timeout() {
            e.push_str("timed out");
        } else if self.is_body() || self.is_decode() {
            e.push_str("body broken");
        } else {
            e.push_str("request failed");
        }
        e
    }
}

fn parse_retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = h
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Everything one attempt needs besides the body.
pub(crate) struct Call<'a> {
    pub client: &'a reqwest::Client,
    pub url: String,
    pub replica: String,
    pub key: Option<&'a Secret>,
    pub headers: &'a [(String, String)],
    pub stream: bool,
    pub require_done: bool,
    pub read_timeout: Duration,
    pub deadline: Instant,
    pub endpoint: Endpoint,
}

impl Call<'_> {
    fn wait_for(&self) -> Duration {
        self.read_timeout
            .min(self.deadline.saturating_duration_since(Instant::now()))
    }

    fn timeout_failure(&self, what: &str) -> Failure {
        if Instant::now() >= self.deadline {
            Failure::new(
                InfraKind::Timeout,
                format!(
                    "request to {} exceeded `request_timeout_s` ({what})",
                    self.replica
                ),
            )
        } else {
            Failure::new(
                InfraKind::Timeout,
                format!(
                    "{what}: nothing from {} for {:.1} s (`read_timeout_s`)",
                    self.replica,
                    self.read_timeout.as_secs_f64()
                ),
            )
        }
    }

    /// Sends `body` once.
    pub async fn run(&self, body: &[u8]) -> Result<Attempt, Failure> {
        let mut rb = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if self.stream {
            rb = rb.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        for (k, v) in self.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(k) = self.key {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", k.expose()))
                .map_err(|_| {
                Failure::new(
                    InfraKind::Client,
                    "the API key holds characters not allowed in an HTTP header".into(),
                )
            })?;
            v.set_sensitive(true);
            rb = rb.header(reqwest::header::AUTHORIZATION, v);
        }
        let req = rb.body(body.to_vec());
        let t0 = Instant::now();
        let mut resp = match tokio::time::timeout(self.wait_for(), req.send()).await {
            Err(_) => return Err(self.timeout_failure("waiting for response headers")),
            Ok(Err(e)) => {
                let mut f = Failure::new(
                    InfraKind::Connection,
                    format!(
                        "{} ({}): {}",
                        if e.is_connect() {
                            "connection failed"
                        } else {
                            "connection lost before a response"
                        },
                        self.replica,
                        scrub(&chain(&e), self.key)
                    ),
                );
                f.replica_down = e.is_connect();
                f.stale = !e.is_connect() && closed_before_response(&e);
                return Err(f.retry());
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            let retry_after = parse_retry_after(resp.headers());
            let text = self.read_excerpt(&mut resp).await;
            let (kind, retry, what) = match status {
                429 => (InfraKind::RateLimited, true, "rate limited"),
                408 => (InfraKind::Timeout, true, "server timed out the request"),
                500..=599 => (InfraKind::Server, true, "server error"),
                _ => (InfraKind::Client, false, "request refused"),
            };
            let mut f = Failure::new(kind, format!("{what} by {}", self.replica))
                .status(status)
                .body(&text, self.key);
            f.retry = retry;
            f.retry_after = retry_after;
            return Err(f);
        }
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if self.stream && is_sse {
            self.read_stream(resp, t0, status).await
        } else {
            self.read_whole(resp, t0, status).await
        }
    }

    async fn read_excerpt(&self, resp: &mut reqwest::Response) -> String {
        let mut buf = Vec::new();
        while buf.len() < 8192 {
            match tokio::time::timeout(self.wait_for().min(Duration::from_secs(10)), resp.chunk())
                .await
            {
                Ok(Ok(Some(c))) => buf.extend_from_slice(&c),
                _ => break,
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    async fn read_whole(
        &self,
        mut resp: reqwest::Response,
        t0: Instant,
        status: u16,
    ) -> Result<Attempt, Failure> {
        let mut buf = Vec::new();
        loop {
            match tokio::time::timeout(self.wait_for(), resp.chunk()).await {
                Err(_) => {
                    return Err(self
                        .timeout_failure("reading the response body")
                        .status(status)
                        .body(&String::from_utf8_lossy(&buf), self.key));
                }
                Ok(Err(e)) => {
                    return Err(Failure::new(
                        InfraKind::Stream,
                        format!(
                            "response body from {} cut after {} bytes: {}",
                            self.replica,
                            buf.len(),
                            scrub(&chain(&e), self.key)
                        ),
                    )
                    .status(status)
                    .body(&String::from_utf8_lossy(&buf), self.key));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => {
                    if buf.len() + c.len() > MAX_BODY {
                        return Err(Failure::new(
                            InfraKind::Stream,
                            format!(
                                "response body from {} exceeds {} MiB",
                                self.replica,
                                MAX_BODY >> 20
                            ),
                        )
                        .status(status));
                    }
                    buf.extend_from_slice(&c);
                }
            }
        }
        let total_ms = ms(t0.elapsed());
        let text = String::from_utf8_lossy(&buf);
        let v: Value = serde_json::from_slice(&buf).map_err(|e| {
            Failure::new(
                InfraKind::Stream,
                format!("response from {} is not valid JSON ({e})", self.replica),
            )
            .status(status)
            .body(&text, self.key)
        })?;
        let mut a = parse_whole(&v, self.endpoint).map_err(|m| {
            Failure::new(InfraKind::Stream, format!("{m} (from {})", self.replica))
                .status(status)
                .body(&text, self.key)
        })?;
        a.total_ms = total_ms;
        Ok(a)
    }

    async fn read_stream(
        &self,
        mut resp: reqwest::Response,
        t0: Instant,
        status: u16,
    ) -> Result<Attempt, Failure> {
        let mut parser = SseParser::new(MAX_LINE, MAX_LINE);
        let mut st = StreamState::new(self.endpoint);
        let mut events = Vec::new();
        let mut total = 0usize;
        // The last bytes received, for the excerpt of a broken stream.
        let mut tail: Vec<u8> = Vec::new();
        let fail = |f: Failure, tail: &[u8]| {
            f.status(status)
                .body(&String::from_utf8_lossy(tail), self.key)
        };
        while !st.done {
            let chunk = match tokio::time::timeout(self.wait_for(), resp.chunk()).await {
                Err(_) => return Err(fail(self.timeout_failure("stream stalled"), &tail)),
                Ok(Err(e)) => {
                    return Err(fail(
                        Failure::new(
                            InfraKind::Stream,
                            format!(
                                "stream from {} broken after {total} bytes: {}",
                                self.replica,
                                scrub(&chain(&e), self.key)
                            ),
                        ),
                        &tail,
                    ));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => c,
            };
            let at = Instant::now();
            total += chunk.len();
            if total > MAX_BODY {
                return Err(fail(
                    Failure::new(
                        InfraKind::Stream,
                        format!(
                            "stream from {} exceeds {} MiB",
                            self.replica,
                            MAX_BODY >> 20
                        ),
                    ),
                    &tail,
                ));
            }
            tail.extend_from_slice(&chunk);
            if tail.len() > 2 * EXCERPT {
                tail.drain(..tail.len() - EXCERPT);
            }
            parser.feed(&chunk, &mut events).map_err(|e| {
                fail(
                    Failure::new(
                        InfraKind::Stream,
                        format!("stream from {}: {e}", self.replica),
                    ),
                    &tail,
                )
            })?;
            for ev in events.drain(..) {
                st.on_event(&ev, at).map_err(|m| {
                    Failure::new(
                        InfraKind::Stream,
                        format!("{m} (stream from {})", self.replica),
                    )
                    .status(status)
                    .body(&ev.data, self.key)
                })?;
                if st.done {
                    st.end = Some(at);
                    break;
                }
            }
        }
        if st.done {
            // Only the end of the chunked body may follow `[DONE]`; reading it lets the
            // connection go back to the pool. A server that keeps the body open is not waited
            // for: the connection is dropped instead.
            let drain = async {
                for _ in 0..64 {
                    if !matches!(resp.chunk().await, Ok(Some(_))) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(250), drain).await;
        }
        if !st.done {
            if parser.has_partial() {
                return Err(fail(
                    Failure::new(
                        InfraKind::Stream,
                        format!(
                            "stream from {} cut in the middle of an event after {total} bytes",
                            self.replica
                        ),
                    ),
                    &tail,
                ));
            }
            if self.require_done {
                return Err(fail(
                    Failure::new(
                        InfraKind::Stream,
                        format!(
                            "stream from {} ended without [DONE] after {total} bytes",
                            self.replica
                        ),
                    ),
                    &tail,
                ));
            }
            st.end = Some(Instant::now());
        }
        st.finish(t0).map_err(|m| {
            fail(
                Failure::new(
                    InfraKind::Stream,
                    format!("{m} (stream from {})", self.replica),
                ),
                &tail,
            )
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Where an answer starts, given inline `<think>` blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum AnswerState {
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
struct ChoiceAcc {
    text: String,
    reasoning: String,
    tools: BTreeMap<u64, (Option<String>, String, String)>,
    finish: Option<String>,
    answer: AnswerState,
}

impl ChoiceAcc {
    /// Appends answer-channel text; true when the answer proper has now started.
    fn push_text(&mut self, s: &str) -> bool {
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

    fn into_choice(self) -> Choice {
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

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn parse_usage(v: &Value) -> Option<Usage> {
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

fn error_message(v: &Value) -> Option<String> {
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

/// Assembles a stream's chunks.
struct StreamState {
    endpoint: Endpoint,
    choices: BTreeMap<u32, ChoiceAcc>,
    usage: Option<Usage>,
    first_token: Option<Instant>,
    first_answer: Option<Instant>,
    last_token: Option<Instant>,
    gaps: Vec<f64>,
    token_events: u64,
    done: bool,
    end: Option<Instant>,
    model: Option<String>,
    fingerprint: Option<String>,
}

impl StreamState {
    fn new(endpoint: Endpoint) -> Self {
        StreamState {
            endpoint,
            choices: BTreeMap::new(),
            usage: None,
            first_token: None,
            first_answer: None,
            last_token: None,
            gaps: Vec::new(),
            token_events: 0,
            done: false,
            end: None,
            model: None,
            fingerprint: None,
        }
    }

    fn on_event(&mut self, ev: &Event, at: Instant) -> Result<(), String> {
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

    fn finish(self, t0: Instant) -> Result<Attempt, String> {
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
        })
    }
}

fn excerpt(s: &str) -> String {
    let t: String = s.chars().take(EXCERPT).collect();
    if t.len() < s.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// A whole (non-streamed) response.
fn parse_whole(v: &Value, endpoint: Endpoint) -> Result<Attempt, String> {
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
        ..Attempt::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(data: &str) -> Event {
        Event {
            event: String::new(),
            data: data.into(),
        }
    }

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

    #[test]
    fn body_holds_params_n_stream_options_and_extra_body() {
        use crate::options::{Options, resolve};
        let m = llmtest_spec::ModelConfig {
            name: "m".into(),
            backend: "openai".into(),
            max_concurrency: 1,
            params: Default::default(),
            description: None,
            suites: None,
            options: serde_json::json!({"provider": "openai", "api_key_env": "", "model": "gpt"})
                .as_object()
                .unwrap()
                .clone(),
            loc: Default::default(),
        };
        let opts: Options = llmtest_backend::parse_options(&m).unwrap();
        let r = resolve(&m, opts, std::path::Path::new("."), &|_| None).unwrap();
        let mut p = GenParams {
            temperature: Some(0.0),
            max_tokens: Some(16),
            seed: Some(7),
            stop: Some(vec!["\n".into()]),
            ..Default::default()
        };
        p.extra_body.insert(
            "chat_template_kwargs".into(),
            serde_json::json!({"enable_thinking": false}),
        );
        p.extra_body
            .insert("temperature".into(), serde_json::json!(0.5));
        let prompt = Prompt::Chat(vec![llmtest_spec::Message {
            role: llmtest_spec::Role::User,
            content: "hi".into(),
        }]);
        let (e, b) = build_body(&r, &prompt, &p, 3, true);
        assert_eq!(e, Endpoint::Chat);
        assert_eq!(b["model"], "gpt");
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["max_completion_tokens"], 16);
        assert_eq!(b["n"], 3);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["temperature"], 0.5, "extra_body wins");
        assert_eq!(b["chat_template_kwargs"]["enable_thinking"], false);
        let (e, b) = build_body(&r, &Prompt::Completion("1+1=".into()), &p, 1, false);
        assert_eq!(e, Endpoint::Completions);
        assert_eq!(b["max_tokens"], 16, "completions always take max_tokens");
        assert!(b.get("n").is_none() && b.get("stream").is_none());
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            display_url("https://user:pw@host.example/v1?key=abc"),
            "https://host.example/v1"
        );
        assert_eq!(
            display_url("http://127.0.0.1:{port}/v1"),
            "http://127.0.0.1:{port}/v1"
        );
    }
}
