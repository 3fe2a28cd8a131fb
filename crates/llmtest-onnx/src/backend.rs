//! `backend: onnx` — the [`Backend`] over an [`OnnxModel`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use llmtest_backend::{
    Backend, BackendContext, BackendError, BackendFactory, Choice, InfraError, InfraKind, Request,
    Response, Timings, Usage, parse_options,
};
use llmtest_spec::{GenParams, ModelConfig, Prompt};

use crate::chat::parse_tool_calls;
use crate::gpu::MemoryWatch;
use crate::model::{GenDefaults, LoadOptions, OnnxModel, Provider};
use crate::sampling::Sampling;

/// A model's `llmtest.yaml` keys for `backend: onnx`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The model directory, relative to the project root.
    path: String,
    /// Execution providers, tried in order.
    #[serde(default = "default_providers")]
    providers: Vec<Provider>,
    /// Fail (infrastructure error) rather than run on the CPU.
    #[serde(default)]
    require_gpu: bool,
    /// Intra-op threads per session.
    #[serde(default)]
    threads: Option<usize>,
    /// Sessions in the pool (requests served at the same time).
    #[serde(default = "one")]
    sessions: usize,
    /// Samples of one request generated together.
    #[serde(default = "eight")]
    max_batch: usize,
    #[serde(default)]
    device_id: i32,
    /// The ONNX file in the directory.
    #[serde(default = "model_onnx")]
    file: String,
    /// New tokens when the request sets no `max_tokens`.
    #[serde(default = "default_max_tokens")]
    max_tokens: u32,
}

fn default_providers() -> Vec<Provider> {
    vec![Provider::Cpu]
}
fn one() -> usize {
    1
}
fn eight() -> usize {
    8
}
fn model_onnx() -> String {
    "model.onnx".into()
}
fn default_max_tokens() -> u32 {
    512
}

/// `extra_body` keys this backend understands; others are refused rather than ignored.
const EXTRA_KEYS: &[&str] = &[
    "chat_template_kwargs",
    "ignore_eos",
    "min_p",
    "repetition_penalty",
    "top_k",
];

pub(crate) struct OnnxFactory;

impl BackendFactory for OnnxFactory {
    fn name(&self) -> &str {
        "onnx"
    }

    fn create(
        &self,
        model: &ModelConfig,
        ctx: &BackendContext,
    ) -> Result<Arc<dyn Backend>, BackendError> {
        let opts: Options = parse_options(model)?;
        if opts.sessions == 0 || opts.max_batch == 0 {
            return Err(BackendError::config(format!(
                "model `{}`: `sessions` and `max_batch` must be at least 1",
                model.name
            )));
        }
        let dir = ctx.root.join(&opts.path);
        if !dir.is_dir() {
            return Err(BackendError::config(format!(
                "model `{}`: model directory `{}` does not exist",
                model.name, opts.path
            )));
        }
        let load = LoadOptions {
            providers: opts.providers.clone(),
            require_gpu: opts.require_gpu,
            threads: opts.threads,
            sessions: opts.sessions,
            device_id: opts.device_id,
            file: opts.file.clone(),
            root: ctx.root.clone(),
        };
        let backend = OnnxBackend::load(&dir, &load, opts.max_batch, opts.max_tokens).map_err(
            |e| match e {
                BackendError::Unavailable(m) => {
                    BackendError::Unavailable(format!("model `{}`: {m}", model.name))
                }
                BackendError::Config { message, hint } => BackendError::Config {
                    message: format!("model `{}`: {message}", model.name),
                    hint,
                },
                other => other,
            },
        )?;
        Ok(Arc::new(backend))
    }
}

/// Serves requests from a loaded model; blocking work runs on tokio's blocking pool.
pub struct OnnxBackend {
    model: OnnxModel,
    max_batch: usize,
    max_tokens: u32,
    watch: Option<MemoryWatch>,
    path: PathBuf,
}

impl OnnxBackend {
    /// Loads the model directory `dir` (see [`OnnxModel::load`]).
    pub fn load(
        dir: &std::path::Path,
        opts: &LoadOptions,
        max_batch: usize,
        max_tokens: u32,
    ) -> Result<OnnxBackend, BackendError> {
        let wants_gpu = opts.providers.iter().any(|p| *p != Provider::Cpu);
        let watch = if wants_gpu {
            MemoryWatch::start(opts.device_id)
        } else {
            None
        };
        let model = OnnxModel::load(dir, opts)?;
        let watch = match watch {
            Some(w) if model.provider() != Provider::Cpu => {
                w.loaded();
                Some(w)
            }
            _ => None,
        };
        Ok(OnnxBackend {
            model,
            max_batch: max_batch.max(1),
            max_tokens,
            watch,
            path: dir.to_path_buf(),
        })
    }

    pub fn model(&self) -> &OnnxModel {
        &self.model
    }
}

fn client(msg: impl Into<String>) -> InfraError {
    InfraError::new(InfraKind::Client, msg)
}

/// The request's parameters over the model's `generation_config.json`. With no temperature
/// anywhere, decoding is greedy unless `generation_config.json` says `do_sample: true`
/// (as transformers decides).
fn sampling(
    params: &GenParams,
    defaults: &GenDefaults,
    max_tokens: u32,
) -> Result<Sampling, InfraError> {
    for key in params.extra_body.keys() {
        if !EXTRA_KEYS.contains(&key.as_str()) {
            return Err(client(format!(
                "extra_body key `{key}` is not supported by the onnx backend (supported: {})",
                EXTRA_KEYS.join(", ")
            )));
        }
    }
    let num = |key: &str| -> Result<Option<f64>, InfraError> {
        match params.extra_body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| client(format!("extra_body `{key}` must be a number, not {v}"))),
        }
    };
    let sample_by_default = defaults.do_sample == Some(true);
    let temperature = params.temperature.unwrap_or(if sample_by_default {
        defaults.temperature.unwrap_or(1.0)
    } else {
        0.0
    });
    if !(0.0..=100.0).contains(&temperature) {
        return Err(client(format!("temperature {temperature} is out of range")));
    }
    let top_p = params
        .top_p
        .or(if sample_by_default {
            defaults.top_p
        } else {
            None
        })
        .unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(client(format!("top_p {top_p} must be in (0, 1]")));
    }
    let top_k = match num("top_k")? {
        Some(k) => k.max(0.0) as u32,
        None => params
            .top_k
            .or(if sample_by_default {
                defaults.top_k
            } else {
                None
            })
            .unwrap_or(0),
    };
    Ok(Sampling {
        max_tokens: params.max_tokens.unwrap_or(max_tokens),
        temperature,
        top_p,
        top_k,
        min_p: num("min_p")?.unwrap_or(0.0),
        seed: params.seed,
        stop: params
            .stop
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
        presence_penalty: params.presence_penalty.unwrap_or(0.0),
        frequency_penalty: params.frequency_penalty.unwrap_or(0.0),
        repetition_penalty: num("repetition_penalty")?
            .or(defaults.repetition_penalty)
            .unwrap_or(1.0),
        ignore_eos: match params.extra_body.get("ignore_eos") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                return Err(client(format!(
                    "extra_body `ignore_eos` must be true or false, not {v}"
                )));
            }
        },
        record_logits: false,
    })
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[async_trait::async_trait]
impl Backend for OnnxBackend {
    async fn generate(&self, req: &Request) -> Result<Response, InfraError> {
        let start = Instant::now();
        let model = self.model.clone();
        let params = req.params.clone();
        let prompt = req.prompt.clone();
        let n = req.n.max(1) as usize;
        let (max_batch, max_tokens) = (self.max_batch, self.max_tokens);
        let work = tokio::task::spawn_blocking(move || -> Result<_, InfraError> {
            let text = match &prompt {
                Prompt::Completion(t) => t.clone(),
                Prompt::Chat(msgs) => {
                    let kwargs = match params.extra_body.get("chat_template_kwargs") {
                        None | Some(Value::Null) => Map::new(),
                        Some(Value::Object(m)) => m.clone(),
                        Some(v) => {
                            return Err(client(format!(
                                "extra_body `chat_template_kwargs` must be a mapping, not {v}"
                            )));
                        }
                    };
                    model.render_chat(msgs, params.tools.as_deref(), &kwargs)?
                }
            };
            let ids = model.encode(&text)?;
            let sampling = sampling(&params, model.defaults(), max_tokens)?;
            let mut gens = Vec::new();
            let mut done = 0;
            while done < n {
                let batch = (n - done).min(max_batch);
                // rows keep their index across batches: samples do not depend on max_batch
                gens.push(model.generate_rows(&vec![ids.clone(); batch], &sampling, done)?);
                done += batch;
            }
            Ok((ids.len(), gens))
        });
        let (prompt_tokens, gens) = work.await.map_err(|e| {
            InfraError::new(InfraKind::Other, format!("generation task failed: {e}"))
        })??;

        let first = &gens[0];
        let tools = req.params.tools.as_ref().is_some_and(|t| !t.is_empty());
        let mut choices = Vec::with_capacity(n);
        let mut completion = 0u64;
        for seq in gens.iter().flat_map(|g| &g.sequences) {
            completion += seq.tokens.len() as u64;
            let (text, tool_calls) = if tools {
                parse_tool_calls(&seq.text)
            } else {
                (seq.text.clone(), Vec::new())
            };
            let finish = if !tool_calls.is_empty() {
                "tool_calls"
            } else {
                seq.finish_reason
            };
            choices.push(Choice {
                text,
                reasoning: None,
                tool_calls,
                finish_reason: Some(finish.into()),
            });
        }
        // Timings are those of the first batch (one forward pass per step for all its samples),
        // measured from the request, so waiting for a free session counts as it does on a server.
        let queued = ms(start.elapsed()) - ms(gens.iter().map(|g| g.total).sum());
        let ttft = queued.max(0.0) + ms(first.ttft);
        let mut gaps = Vec::with_capacity(first.step_times.len());
        let mut prev = 0.0;
        for t in &first.step_times {
            gaps.push(ms(*t) - prev);
            prev = ms(*t);
        }
        let tokens_per_s = first
            .step_times
            .last()
            .filter(|t| !t.is_zero())
            .map(|t| first.step_times.len() as f64 / t.as_secs_f64());
        let starts_thinking = first.sequences[0].text.trim_start().starts_with("<think>");
        let mut facts = Map::new();
        facts.insert("backend".into(), json!("onnx"));
        facts.insert(
            "execution_provider".into(),
            json!(self.model.provider().as_str()),
        );
        facts.insert("batch".into(), json!(first.sequences.len()));
        if req.params.response_format.is_some() {
            facts.insert(
                "response_format".into(),
                json!("not enforced by the onnx backend"),
            );
        }
        Ok(Response {
            choices,
            usage: Some(Usage {
                prompt_tokens: Some(prompt_tokens as u64),
                completion_tokens: Some(completion),
                reasoning_tokens: None,
                counted: false,
            }),
            timings: Timings {
                ttft_ms: Some(ttft),
                ttfa_ms: if starts_thinking { None } else { Some(ttft) },
                total_ms: ms(start.elapsed()),
                gaps_ms: gaps,
                tokens_per_s,
                replayed: false,
            },
            facts,
        })
    }

    async fn count_tokens(&self, text: &str) -> Option<Result<usize, InfraError>> {
        Some(self.model.encode(text).map(|ids| ids.len()))
    }

    fn facts(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("backend".into(), json!("onnx"));
        m.insert(
            "execution_provider".into(),
            json!(self.model.provider().as_str()),
        );
        if !self.model.fallbacks().is_empty() {
            m.insert("provider_fallbacks".into(), json!(self.model.fallbacks()));
        }
        if let Some(Ok(rt)) = crate::runtime::loaded() {
            m.insert("onnxruntime".into(), json!(rt.version));
        }
        if let Some(name) = self.path.file_name() {
            m.insert("model_dir".into(), json!(name.to_string_lossy()));
        }
        if let Some(w) = &self.watch {
            m.extend(w.facts());
        }
        m
    }

    async fn shutdown(&self) {
        if let Some(w) = &self.watch {
            w.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_unless_asked_or_generation_config_samples() {
        let p = GenParams::default();
        assert_eq!(
            sampling(&p, &GenDefaults::default(), 9)
                .unwrap()
                .temperature,
            0.0
        );
        let d = GenDefaults {
            do_sample: Some(true),
            temperature: Some(0.7),
            top_p: Some(0.8),
            top_k: Some(20),
            repetition_penalty: Some(1.05),
        };
        let s = sampling(&p, &d, 9).unwrap();
        assert_eq!(
            (
                s.temperature,
                s.top_p,
                s.top_k,
                s.repetition_penalty,
                s.max_tokens
            ),
            (0.7, 0.8, 20, 1.05, 9)
        );
        let p = GenParams {
            temperature: Some(0.0),
            max_tokens: Some(3),
            ..GenParams::default()
        };
        let s = sampling(&p, &d, 9).unwrap();
        assert_eq!((s.temperature, s.max_tokens), (0.0, 3));
    }

    #[test]
    fn unknown_extra_body_is_refused_not_ignored() {
        let mut p = GenParams::default();
        p.extra_body.insert("guided_json".into(), json!({}));
        let e = sampling(&p, &GenDefaults::default(), 9).unwrap_err();
        assert_eq!(e.kind, InfraKind::Client);
        assert!(
            e.message.contains("`guided_json`") && e.message.contains("repetition_penalty"),
            "{e}"
        );
        let mut p = GenParams::default();
        p.extra_body.insert("repetition_penalty".into(), json!(1.1));
        p.extra_body.insert("min_p".into(), json!(0.05));
        let s = sampling(&p, &GenDefaults::default(), 9).unwrap();
        assert_eq!((s.repetition_penalty, s.min_p), (1.1, 0.05));
    }

    #[test]
    fn bad_top_p_is_a_client_error() {
        let p = GenParams {
            top_p: Some(0.0),
            ..GenParams::default()
        };
        assert_eq!(
            sampling(&p, &GenDefaults::default(), 9).unwrap_err().kind,
            InfraKind::Client
        );
    }
}
