//! What went wrong with an attempt: the infrastructure error, whether to retry, the server's
//! `Retry-After`, and error text with keys and URLs kept out.

use std::time::Duration;

use llmtest_backend::{InfraError, InfraKind, Secret};

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
    pub(crate) fn new(kind: InfraKind, message: String) -> Self {
        Failure {
            error: InfraError::new(kind, message),
            retry: false,
            retry_after: None,
            replica_down: false,
            stale: false,
        }
    }
    pub(crate) fn retry(mut self) -> Self {
        self.retry = true;
        self
    }
    pub(crate) fn status(mut self, s: u16) -> Self {
        self.error = self.error.with_status(s);
        self
    }
    pub(crate) fn body(mut self, b: &str, key: Option<&Secret>) -> Self {
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
pub(crate) fn chain(e: &reqwest::Error) -> String {
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
pub(crate) fn closed_before_response(e: &reqwest::Error) -> bool {
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

pub(crate) fn parse_retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
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
