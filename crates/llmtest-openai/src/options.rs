//! A model's options (the keys of its `llmtest.yaml` entry besides the common ones) and the
//! provider presets they start from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use llmtest_backend::{BackendError, Secret};
use llmtest_spec::ModelConfig;

/// The servers and APIs with a preset.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Vllm,
    Sglang,
    Llamacpp,
    Ollama,
    Dashscope,
    Siliconflow,
    Deepseek,
    Openai,
    Openrouter,
}

/// How `n` > 1 samples are obtained.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NMode {
    /// One request with `n` (vLLM, SGLang, OpenAI).
    Native,
    /// `n` requests one after another (servers that ignore or refuse `n`).
    Sequential,
}

/// What the managed server's readiness check sends.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReadyCheck {
    /// A one-token chat completion (default): proves the model is loaded and the chat
    /// template works.
    #[default]
    Chat,
    /// A one-token text completion, for base models without a chat template.
    Completions,
}

/// The preset for a provider: where it listens, which variable holds its key, its quirks.
#[derive(Clone, Debug)]
pub(crate) struct Preset {
    pub base_url: &'static str,
    pub api_key_env: Option<&'static str>,
    pub n: NMode,
    pub max_tokens_field: &'static str,
}

impl Provider {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Provider::Vllm => "vllm",
            Provider::Sglang => "sglang",
            Provider::Llamacpp => "llamacpp",
            Provider::Ollama => "ollama",
            Provider::Dashscope => "dashscope",
            Provider::Siliconflow => "siliconflow",
            Provider::Deepseek => "deepseek",
            Provider::Openai => "openai",
            Provider::Openrouter => "openrouter",
        }
    }

    pub(crate) fn preset(self) -> Preset {
        let p = |base_url, api_key_env, n| Preset {
            base_url,
            api_key_env,
            n,
            max_tokens_field: "max_tokens",
        };
        match self {
            Provider::Vllm => p("http://127.0.0.1:8000/v1", None, NMode::Native),
            Provider::Sglang => p("http://127.0.0.1:30000/v1", None, NMode::Native),
            // Older llama-server builds refuse `n` > 1; current ones accept it but report
            // each choice's usage separately, so the totals would be wrong.
            Provider::Llamacpp => p("http://127.0.0.1:8080/v1", None, NMode::Sequential),
            Provider::Ollama => p("http://127.0.0.1:11434/v1", None, NMode::Sequential),
            Provider::Dashscope => p(
                "https://dashscope.aliyuncs.com/compatible-mode/v1",
                Some("DASHSCOPE_API_KEY"),
                NMode::Sequential,
            ),
            Provider::Siliconflow => p(
                "https://api.siliconflow.cn/v1",
                Some("SILICONFLOW_API_KEY"),
                NMode::Sequential,
            ),
            Provider::Deepseek => p(
                "https://api.deepseek.com/v1",
                Some("DEEPSEEK_API_KEY"),
                NMode::Sequential,
            ),
            // OpenAI's reasoning models refuse `max_tokens` on chat; every chat model accepts
            // `max_completion_tokens`.
            Provider::Openai => Preset {
                max_tokens_field: "max_completion_tokens",
                ..p(
                    "https://api.openai.com/v1",
                    Some("OPENAI_API_KEY"),
                    NMode::Native,
                )
            },
            Provider::Openrouter => p(
                "https://openrouter.ai/api/v1",
                Some("OPENROUTER_API_KEY"),
                NMode::Sequential,
            ),
        }
    }
}

/// The options as written (see the crate docs for each key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Options {
    #[serde(default)]
    pub provider: Option<Provider>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub base_urls: Option<Vec<String>>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub include_usage: Option<bool>,
    #[serde(default)]
    pub n: Option<NMode>,
    #[serde(default)]
    pub max_tokens_field: Option<String>,
    #[serde(default)]
    pub require_done: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub connect_timeout_s: Option<f64>,
    #[serde(default)]
    pub read_timeout_s: Option<f64>,
    #[serde(default)]
    pub request_timeout_s: Option<f64>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub backoff_initial_s: Option<f64>,
    #[serde(default)]
    pub backoff_max_s: Option<f64>,
    #[serde(default)]
    pub retry_after_max_s: Option<f64>,
    #[serde(default)]
    pub adaptive_concurrency: Option<bool>,
    #[serde(default)]
    pub rpm: Option<u32>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub replica_cooldown_s: Option<f64>,
    #[serde(default)]
    pub server: Option<ServerOptions>,
}

/// `server:` — a server llmtest starts and stops itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerOptions {
    /// The command; `{port}` and `{host}` are replaced in every argument.
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub ready_timeout_s: Option<f64>,
    #[serde(default)]
    pub stop_timeout_s: Option<f64>,
    #[serde(default)]
    pub ready_check: ReadyCheck,
}

/// Everything resolved: presets applied, durations checked, the key read.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub model_name: String,
    pub provider: Option<Provider>,
    /// Base URLs without a trailing slash; may hold `{port}` when `server` is set.
    pub base_urls: Vec<String>,
    pub served_model: String,
    pub api_key: Option<Secret>,
    pub stream: bool,
    pub include_usage: bool,
    pub n_mode: NMode,
    pub max_tokens_field: String,
    pub require_done: bool,
    pub headers: Vec<(String, String)>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_retries: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub retry_after_max: Duration,
    pub max_concurrency: usize,
    pub adaptive_concurrency: bool,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub replica_cooldown: Duration,
    pub server: Option<ResolvedServer>,
}

#[derive(Clone, Debug)]
pub(crate) struct ResolvedServer {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub ready_timeout: Duration,
    pub stop_timeout: Duration,
    pub ready_check: ReadyCheck,
}

fn secs(model: &str, key: &str, v: Option<f64>, default: f64) -> Result<Duration, BackendError> {
    let s = v.unwrap_or(default);
    if !s.is_finite() || !(0.0..=7.0 * 86_400.0).contains(&s) {
        return Err(BackendError::config(format!(
            "model `{model}`: `{key}` must be a number of seconds between 0 and 604800, got {s}"
        )));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Expands `${NAME}` and `${NAME:-default}` (so a command can say
/// `${LLMTEST_LLAMA_SERVER:-ci/cache/llama-server/bin/llama-server}`).
fn expand_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{s}`"))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if !is_env_name(name) {
            return Err(format!(
                "`${{{inner}}}` does not name an environment variable"
            ));
        }
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable `{name}` is not set (use `${{{name}:-default}}` for a fallback)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `env` is how the environment is read (a parameter so tests need not mutate the process's).
pub(crate) fn resolve(
    model: &ModelConfig,
    opts: Options,
    root: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, BackendError> {
    let name = model.name.as_str();
    let cfg = |m: String| BackendError::config(format!("model `{name}`: {m}"));
    let preset = opts.provider.map(Provider::preset);

    if opts.base_url.is_some() && opts.base_urls.is_some() {
        return Err(cfg("give `base_url` or `base_urls`, not both".into()));
    }
    let server = match opts.server {
        None => None,
        Some(s) => {
            let command = s
                .command
                .iter()
                .map(|a| expand_env(a, env))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| cfg(format!("`server.command`: {m}")))?;
            let server_env = s
                .env
                .iter()
                .map(|(k, v)| Ok((k.clone(), expand_env(v, env)?)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|m| cfg(format!("`server.env`: {m}")))?;
            let Some(program) = command.first() else {
                return Err(cfg("`server.command` is empty".into()));
            };
            // A relative program path with a slash is relative to the project root, like
            // every other path in `llmtest.yaml`; a bare name is looked up on PATH.
            let program = if program.contains('/') && Path::new(program).is_relative() {
                root.join(program)
            } else {
                PathBuf::from(program)
            };
            Some(ResolvedServer {
                program,
                args: command[1..].to_vec(),
                env: server_env,
                cwd: root.to_path_buf(),
                ready_timeout: secs(name, "server.ready_timeout_s", s.ready_timeout_s, 300.0)?,
                stop_timeout: secs(name, "server.stop_timeout_s", s.stop_timeout_s, 10.0)?,
                ready_check: s.ready_check,
            })
        }
    };
    let mut base_urls = match (opts.base_url, opts.base_urls) {
        (Some(u), None) => vec![u],
        (None, Some(us)) if !us.is_empty() => us,
        (None, Some(_)) => return Err(cfg("`base_urls` is empty".into())),
        _ if server.is_some() => vec!["http://127.0.0.1:{port}/v1".to_owned()],
        _ => match &preset {
            Some(p) => vec![p.base_url.to_owned()],
            None => {
                return Err(BackendError::Config {
                    message: format!("model `{name}`: no server to talk to"),
                    hint: Some("set `provider` (vllm, sglang, llamacpp, ollama, dashscope, siliconflow, deepseek, openai, openrouter), `base_url`, or `server`".into()),
                });
            }
        },
    };
    for u in &mut base_urls {
        while u.ends_with('/') {
            u.pop();
        }
        let probe = u.replace("{port}", "1");
        match reqwest::Url::parse(&probe) {
            Ok(url) if url.scheme() == "http" || url.scheme() == "https" => {}
            _ => {
                return Err(cfg(format!(
                    "`{}` is not an http(s) URL",
                    crate::url::display_url(u)
                )));
            }
        }
    }
    if let Some(s) = &server {
        let placeholder = s.args.iter().any(|a| a.contains("{port}"));
        if base_urls.len() != 1 {
            return Err(cfg(
                "a managed `server` serves one base URL; drop `base_urls`".into(),
            ));
        }
        if placeholder != base_urls[0].contains("{port}") {
            return Err(cfg("`server.command` and the base URL must both use `{port}` (llmtest picks a free port) or neither (a fixed port)".into()));
        }
    } else if base_urls.iter().any(|u| u.contains("{port}")) {
        return Err(cfg("`{port}` in a base URL needs a managed `server`".into()));
    }

    let key_var = match opts.api_key_env {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v),
        None => preset
            .as_ref()
            .and_then(|p| p.api_key_env)
            .map(str::to_owned),
    };
    let api_key = match key_var {
        None => None,
        Some(var) => {
            if !is_env_name(&var) {
                // Never echo it: people paste the key itself here.
                return Err(cfg("`api_key_env` must name an environment variable (letters, digits, `_`), not hold the key".into()));
            }
            match env(&var) {
                Some(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => return Err(BackendError::MissingCredential { var }),
            }
        }
    };

    let mut headers = Vec::new();
    for (k, v) in opts.headers {
        if k.eq_ignore_ascii_case("authorization") {
            return Err(cfg(
                "set the key with `api_key_env`, not in `headers`".into()
            ));
        }
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(&v).is_err()
        {
            return Err(cfg(format!("header `{k}` is not a valid HTTP header")));
        }
        headers.push((k, v));
    }
    let max_tokens_field = opts
        .max_tokens_field
        .or_else(|| preset.as_ref().map(|p| p.max_tokens_field.to_owned()))
        .unwrap_or_else(|| "max_tokens".into());
    if max_tokens_field != "max_tokens" && max_tokens_field != "max_completion_tokens" {
        return Err(cfg(format!(
            "`max_tokens_field` must be `max_tokens` or `max_completion_tokens`, got `{max_tokens_field}`"
        )));
    }
    if opts.rpm == Some(0) || opts.tpm == Some(0) {
        return Err(cfg(
            "`rpm` and `tpm` must be positive (leave them out for no limit)".into(),
        ));
    }
    let max_retries = opts.max_retries.unwrap_or(4);
    if max_retries > 20 {
        return Err(cfg(format!(
            "`max_retries` is at most 20, got {max_retries}"
        )));
    }
    let read_timeout = secs(name, "read_timeout_s", opts.read_timeout_s, 120.0)?;
    if read_timeout.is_zero() {
        return Err(cfg("`read_timeout_s` must be positive".into()));
    }
    Ok(Resolved {
        model_name: name.to_owned(),
        provider: opts.provider,
        base_urls,
        served_model: opts.model.unwrap_or_else(|| name.to_owned()),
        api_key,
        stream: opts.stream.unwrap_or(true),
        include_usage: opts.include_usage.unwrap_or(true),
        n_mode: opts
            .n
            .or(preset.as_ref().map(|p| p.n))
            .unwrap_or(NMode::Native),
        max_tokens_field,
        require_done: opts.require_done.unwrap_or(true),
        headers,
        connect_timeout: secs(name, "connect_timeout_s", opts.connect_timeout_s, 10.0)?,
        read_timeout,
        request_timeout: secs(name, "request_timeout_s", opts.request_timeout_s, 900.0)?,
        max_retries,
        backoff_initial: secs(name, "backoff_initial_s", opts.backoff_initial_s, 0.5)?,
        backoff_max: secs(name, "backoff_max_s", opts.backoff_max_s, 30.0)?,
        retry_after_max: secs(name, "retry_after_max_s", opts.retry_after_max_s, 120.0)?,
        max_concurrency: model.max_concurrency.max(1),
        adaptive_concurrency: opts.adaptive_concurrency.unwrap_or(true),
        rpm: opts.rpm,
        tpm: opts.tpm,
        replica_cooldown: secs(name, "replica_cooldown_s", opts.replica_cooldown_s, 30.0)?,
        server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(options: serde_json::Value) -> ModelConfig {
        ModelConfig {
            max_concurrency: 4,
            ..ModelConfig::new("m", "openai", options)
        }
    }

    fn res(options: serde_json::Value, env: &[(&str, &str)]) -> Result<Resolved, BackendError> {
        let m = model(options);
        let opts: Options = llmtest_backend::parse_options(&m)?;
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(&m, opts, Path::new("/proj"), &|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn presets_fill_url_key_and_quirks() {
        let r = res(
            json!({"provider": "dashscope", "model": "qwen-plus"}),
            &[("DASHSCOPE_API_KEY", "sk-abcdefgh")],
        )
        .unwrap();
        assert_eq!(
            r.base_urls,
            ["https://dashscope.aliyuncs.com/compatible-mode/v1"]
        );
        assert_eq!(r.api_key.as_ref().unwrap().expose(), "sk-abcdefgh");
        assert_eq!(r.n_mode, NMode::Sequential);
        assert_eq!(r.served_model, "qwen-plus");
        let r = res(json!({"provider": "openai"}), &[("OPENAI_API_KEY", "k")]).unwrap();
        assert_eq!(r.max_tokens_field, "max_completion_tokens");
        assert_eq!(r.n_mode, NMode::Native);
        assert_eq!(r.served_model, "m", "defaults to the llmtest name");
    }

    #[test]
    fn every_preset_field_can_be_overridden() {
        let r = res(
            json!({"provider": "deepseek", "base_url": "http://127.0.0.1:9/v1/", "api_key_env": "MY_KEY", "n": "native", "max_tokens_field": "max_completion_tokens"}),
            &[("MY_KEY", "secret-value")],
        )
        .unwrap();
        assert_eq!(r.base_urls, ["http://127.0.0.1:9/v1"]);
        assert_eq!(r.n_mode, NMode::Native);
        assert_eq!(r.max_tokens_field, "max_completion_tokens");
        // An empty `api_key_env` turns the preset's key off.
        let r = res(
            json!({"provider": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": ""}),
            &[],
        )
        .unwrap();
        assert!(r.api_key.is_none());
    }

    #[test]
    fn missing_key_is_a_missing_credential() {
        match res(json!({"provider": "siliconflow"}), &[]) {
            Err(BackendError::MissingCredential { var }) => assert_eq!(var, "SILICONFLOW_API_KEY"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_key_pasted_as_the_variable_name_is_not_echoed() {
        let Err(BackendError::Config { message, .. }) = res(
            json!({"provider": "openai", "api_key_env": "sk-live-1234567890"}),
            &[],
        ) else {
            panic!()
        };
        assert!(!message.contains("sk-live"), "{message}");
    }

    #[test]
    fn unknown_option_gets_a_hint() {
        let Err(BackendError::Config { message, hint }) =
            res(json!({"provider": "vllm", "base_ulr": "x"}), &[])
        else {
            panic!()
        };
        assert!(message.contains("base_ulr"), "{message}");
        assert!(hint.unwrap().contains("base_url"));
    }

    #[test]
    fn server_needs_port_placeholder_on_both_sides() {
        let r = res(
            json!({"server": {"command": ["bin/srv", "--port", "{port}"]}}),
            &[],
        )
        .unwrap();
        assert_eq!(r.base_urls, ["http://127.0.0.1:{port}/v1"]);
        let s = r.server.unwrap();
        assert_eq!(s.program, Path::new("/proj/bin/srv"));
        assert!(
            res(
                json!({"server": {"command": ["srv", "--port", "8080"]}}),
                &[]
            )
            .is_err()
        );
        assert!(res(json!({"server": {"command": ["srv", "--port", "8080"]}, "base_url": "http://127.0.0.1:8080/v1"}), &[]).is_ok());
        assert!(res(json!({"base_url": "http://127.0.0.1:{port}/v1"}), &[]).is_err());
    }

    #[test]
    fn server_command_expands_environment_variables() {
        let cmd = json!({"server": {"command": ["${SRV:-bin/default}", "--port", "{port}", "-m", "${MODEL_DIR}/m.gguf"], "env": {"X": "${HOME_X:-1}"}}});
        let s = res(cmd.clone(), &[("MODEL_DIR", "/models")])
            .unwrap()
            .server
            .unwrap();
        assert_eq!(s.program, Path::new("/proj/bin/default"));
        assert_eq!(s.args[2..], ["-m", "/models/m.gguf"]);
        assert_eq!(s.env, [("X".to_string(), "1".to_string())]);
        let s = res(
            cmd.clone(),
            &[("MODEL_DIR", "/m"), ("SRV", "/opt/llama-server")],
        )
        .unwrap()
        .server
        .unwrap();
        assert_eq!(s.program, Path::new("/opt/llama-server"));
        let Err(BackendError::Config { message, .. }) = res(cmd, &[]) else {
            panic!()
        };
        assert!(message.contains("MODEL_DIR"), "{message}");
    }

    #[test]
    fn nothing_to_talk_to_is_a_config_error() {
        let Err(BackendError::Config { hint, .. }) = res(json!({}), &[]) else {
            panic!()
        };
        assert!(hint.unwrap().contains("provider"));
        assert!(res(json!({"base_url": "ftp://x"}), &[]).is_err());
        assert!(
            res(
                json!({"base_url": "http://127.0.0.1:1/v1", "headers": {"Authorization": "x"}}),
                &[]
            )
            .is_err()
        );
    }
}
