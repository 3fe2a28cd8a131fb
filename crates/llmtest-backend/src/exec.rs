//! `backend: exec`: any command as a model, for models with no HTTP API.
//!
//! ```yaml
//! models:
//!   my-local-model:
//!     backend: exec
//!     command: [python3, scripts/generate.py, --greedy]
//!     input: json        # `text` (default): the prompt text on stdin; `json`: the whole request
//!     timeout_s: 120
//! ```
//!
//! The command's stdout is the answer. For `n` > 1 the command runs `n` times. A non-zero
//! exit status, a timeout or a spawn failure is an infrastructure error, never a wrong answer.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use llmtest_spec::{ModelConfig, Prompt};

use crate::types::{
    Backend, BackendContext, BackendError, BackendFactory, Choice, InfraError, InfraKind, Request,
    Response, parse_options,
};

#[derive(Deserialize, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Input {
    #[default]
    Text,
    Json,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    command: Vec<String>,
    #[serde(default)]
    input: Input,
    #[serde(default = "default_timeout")]
    timeout_s: f64,
}

fn default_timeout() -> f64 {
    300.0
}

/// Runs a command per generation.
pub struct ExecBackend {
    command: Vec<String>,
    input: Input,
    timeout: Duration,
    cwd: std::path::PathBuf,
}

impl ExecBackend {
    async fn once(&self, req: &Request, payload: &[u8]) -> Result<String, InfraError> {
        let mut cmd = tokio::process::Command::new(&self.command[0]);
        cmd.args(&self.command[1..])
            .current_dir(&self.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            InfraError::new(
                InfraKind::Process,
                format!("cannot start `{}`: {e}", self.command[0]),
            )
        })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let payload = payload.to_vec();
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&payload).await;
            drop(stdin);
        });
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                return Err(InfraError::new(
                    InfraKind::Process,
                    format!("`{}` failed: {e}", self.command[0]),
                ));
            }
            Err(_) => {
                return Err(InfraError::new(
                    InfraKind::Timeout,
                    format!(
                        "`{}` did not finish within {:?} for case `{}`",
                        self.command[0], self.timeout, req.case_id
                    ),
                ));
            }
        };
        let _ = writer.await;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(InfraError::new(
                InfraKind::Process,
                format!("`{}` exited with {}", self.command[0], out.status),
            )
            .with_body(err.trim()));
        }
        String::from_utf8(out.stdout).map_err(|_| {
            InfraError::new(
                InfraKind::Process,
                format!("`{}` wrote invalid UTF-8", self.command[0]),
            )
        })
    }
}

#[async_trait::async_trait]
impl Backend for ExecBackend {
    async fn generate(&self, req: &Request) -> Result<Response, InfraError> {
        let payload = match self.input {
            Input::Text => match &req.prompt {
                Prompt::Completion(t) => t.clone().into_bytes(),
                Prompt::Chat(_) => req.prompt.text().as_bytes().to_vec(),
            },
            Input::Json => serde_json::to_vec(req).expect("request serializes"),
        };
        let t0 = Instant::now();
        let mut choices = Vec::new();
        for _ in 0..req.n.max(1) {
            let text = self.once(req, &payload).await?;
            choices.push(Choice {
                text,
                finish_reason: Some("stop".into()),
                ..Choice::default()
            });
        }
        Ok(Response::untimed(choices, t0))
    }
}

pub(crate) struct ExecFactory;

impl BackendFactory for ExecFactory {
    fn name(&self) -> &str {
        "exec"
    }
    fn create(
        &self,
        model: &ModelConfig,
        ctx: &BackendContext,
    ) -> Result<Arc<dyn Backend>, BackendError> {
        let o: Options = parse_options(model)?;
        if o.command.is_empty() {
            return Err(BackendError::config(format!(
                "model `{}`: `command` is empty",
                model.name
            )));
        }
        if !(o.timeout_s.is_finite() && o.timeout_s > 0.0) {
            return Err(BackendError::config(format!(
                "model `{}`: `timeout_s` must be > 0",
                model.name
            )));
        }
        Ok(Arc::new(ExecBackend {
            command: o.command,
            input: o.input,
            timeout: Duration::from_secs_f64(o.timeout_s),
            cwd: ctx.root.clone(),
        }))
    }
}
