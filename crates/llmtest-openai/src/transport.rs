//! One HTTP attempt: the request sent, the response headers judged, the body read whole or
//! as a stream, each within the read and request deadlines.

use std::time::{Duration, Instant};

use serde_json::Value;

use llmtest_backend::{InfraKind, Secret};

use crate::failure::{Failure, chain, closed_before_response, parse_retry_after, scrub};
use crate::response::{Attempt, EXCERPT, ms, parse_whole};
use crate::sse::SseParser;
use crate::stream::StreamState;
use crate::url::Endpoint;

/// Longest SSE line and event accepted (a tool call's arguments can be long).
const MAX_LINE: usize = 4 << 20;
/// Largest response body accepted, streamed or not.
const MAX_BODY: usize = 64 << 20;

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
