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
pub fn redact_secrets(text: &str) -> String {
    let mut out = text.to_owned();
    for (k, v) in std::env::vars() {
        if v.len() >= 8 && is_secret_var(&k) && out.contains(&v) {
            out = out.replace(&v, "[REDACTED]");
        }
    }
    out
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
