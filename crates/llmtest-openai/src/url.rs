//! Request URLs: the endpoint a prompt goes to, and URLs fit for messages.

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

#[cfg(test)]
mod tests {
    use super::*;

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
