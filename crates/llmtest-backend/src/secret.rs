//! Keeping secrets out of everything llmtest writes.

/// Environment variable names whose values are treated as secrets.
pub fn is_secret_var(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "AUTH",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// Replaces the value of every secret-looking environment variable (8 characters or more)
/// that occurs in `text` with `[REDACTED]`. A last line of defence: backends must not put
/// keys into responses, errors or facts in the first place.
/// An owned `text` comes back as it is when it holds no secret (no copy of a large report).
pub fn redact_secrets<'a>(text: impl Into<std::borrow::Cow<'a, str>>) -> String {
    let mut out = text.into();
    for v in secret_values() {
        if out.contains(&v) {
            out = out.replace(&v, "[REDACTED]").into();
        }
    }
    out.into_owned()
}

/// The values [`redact_secrets`] replaces, longest first.
fn secret_values() -> Vec<String> {
    // `vars_os`: a variable that is not Unicode (which `vars` panics on) is not a key we
    // could have sent, and must not crash the end of a run.
    let mut v: Vec<String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, v)| v.len() >= 8 && is_secret_var(k))
        .map(|(_, v)| v)
        .collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v
}

/// [`redact_secrets`] for a stream: what is written through it reaches `inner` with every
/// secret value replaced, also one split across writes (the last bytes that could begin
/// one are held back until more arrive or the writer is flushed). Lets a large report go
/// to its file without being held in memory whole.
pub struct RedactingWriter<W: std::io::Write> {
    inner: W,
    secrets: Vec<String>,
    pending: Vec<u8>,
}

impl<W: std::io::Write> RedactingWriter<W> {
    pub fn new(inner: W) -> Self {
        RedactingWriter {
            inner,
            secrets: secret_values(),
            pending: Vec::new(),
        }
    }

    /// Writes what is held back and returns the inner writer (flushed). Dropping the
    /// writer without this or `flush` loses the held-back bytes.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.drain(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Replaces what is whole in `pending` and writes all of it (`all`) or all but the bytes
    /// that could still begin a secret.
    fn drain(&mut self, all: bool) -> std::io::Result<()> {
        for s in &self.secrets {
            let s = s.as_bytes();
            if let Some(at) = find(&self.pending, s, 0) {
                let mut out = Vec::with_capacity(self.pending.len());
                let mut from = 0;
                let mut next = Some(at);
                while let Some(i) = next {
                    out.extend_from_slice(&self.pending[from..i]);
                    out.extend_from_slice(b"[REDACTED]");
                    from = i + s.len();
                    next = find(&self.pending, s, from);
                }
                out.extend_from_slice(&self.pending[from..]);
                self.pending = out;
            }
        }
        let keep = if all {
            0
        } else {
            self.secrets
                .first()
                .map_or(0, |s| s.len() - 1)
                .min(self.pending.len())
        };
        let cut = self.pending.len() - keep;
        self.inner.write_all(&self.pending[..cut])?;
        self.pending.drain(..cut);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.secrets.is_empty() {
            return self.inner.write(buf);
        }
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= 64 << 10 {
            self.drain(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.drain(true)?;
        self.inner.flush()
    }
}

/// A secret string: its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value, for the one place that needs it (an HTTP header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_that_is_not_unicode_is_no_crash() {
        use std::os::unix::ffi::OsStrExt as _;
        let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe-not-utf8-token");
        // SAFETY: a name no other test reads or writes.
        unsafe { std::env::set_var("LLMTEST_NOT_UNICODE_TOKEN", bad) };
        assert_eq!(redact_secrets("plain text"), "plain text");
        unsafe { std::env::remove_var("LLMTEST_NOT_UNICODE_TOKEN") };
    }

    #[test]
    fn the_stream_redacts_secrets_split_across_writes_and_passes_the_rest() {
        let secret = "sk-stream-0123456789abcdef";
        // SAFETY: a name no other test reads or writes.
        unsafe { std::env::set_var("LLMTEST_STREAM_TEST_API_KEY", secret) };
        let text = format!(
            "head {secret} middle {secret}{secret} tail é {}",
            "x".repeat(70_000)
        );
        for chunk in [1usize, 3, 7, 1000, 100_000] {
            let mut w = RedactingWriter::new(Vec::new());
            for part in text.as_bytes().chunks(chunk) {
                std::io::Write::write_all(&mut w, part).unwrap();
            }
            let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
            assert_eq!(out, redact_secrets(text.as_str()), "chunks of {chunk}");
            assert!(!out.contains(secret));
            assert_eq!(out.matches("[REDACTED]").count(), 3);
        }
        unsafe { std::env::remove_var("LLMTEST_STREAM_TEST_API_KEY") };
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("sk-verysecretvalue");
        assert!(!format!("{s:?} {s}").contains("verysecret"));
        assert_eq!(s.expose(), "sk-verysecretvalue");
    }

    #[test]
    fn env_secret_values_are_redacted() {
        // SAFETY: test-only variable with a unique name, set before any reader runs.
        unsafe { std::env::set_var("LLMTEST_TEST_REDACT_API_KEY", "sk-redact-me-please") };
        let out = redact_secrets("header: Bearer sk-redact-me-please; ok");
        assert_eq!(out, "header: Bearer [REDACTED]; ok");
    }
}
