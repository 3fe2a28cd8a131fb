//! A model directory: the ONNX decoder with its KV cache, the tokenizer, the chat template
//! and the generation defaults; and the generation loop (prefill, then one token per step
//! with the cache kept where the execution provider computes).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, Tensor, TensorElementType};
use rand::RngExt;
use serde_json::{Map, Value};

use llmtest_backend::{BackendError, InfraError, InfraKind};
use llmtest_spec::Message;

use crate::chat::ChatTemplate;
use crate::runtime;
use crate::sampling::{Sampler, Sampling};

/// An execution provider, in the order the model's `providers:` list gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// NVIDIA TensorRT (needs the `tensorrt` feature and `onnxruntime-gpu`).
    Tensorrt,
    /// NVIDIA CUDA (needs the `cuda` feature and `onnxruntime-gpu`).
    Cuda,
    /// Always available.
    Cpu,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Tensorrt => "tensorrt",
            Provider::Cuda => "cuda",
            Provider::Cpu => "cpu",
        }
    }
    fn is_gpu(self) -> bool {
        self != Provider::Cpu
    }
}

/// How to load a model directory.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Tried in order; the first that registers runs the model (default `[cpu]`).
    pub providers: Vec<Provider>,
    /// Fail instead of falling back to the CPU when no GPU provider can be registered.
    pub require_gpu: bool,
    /// Intra-op threads per session (default: ONNX Runtime's choice, one per core).
    pub threads: Option<usize>,
    /// Sessions in the pool: how many requests run at the same time (default 1).
    pub sessions: usize,
    /// The GPU's ordinal.
    pub device_id: i32,
    /// The ONNX file inside the directory (default `model.onnx`).
    pub file: String,
    /// Project root: where `.venv` is looked for.
    pub root: PathBuf,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            providers: vec![Provider::Cpu],
            require_gpu: false,
            threads: None,
            sessions: 1,
            device_id: 0,
            file: "model.onnx".into(),
            root: PathBuf::from("."),
        }
    }
}

/// Generation defaults from `generation_config.json`.
#[derive(Clone, Debug, Default)]
pub(crate) struct GenDefaults {
    pub do_sample: Option<bool>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub repetition_penalty: Option<f64>,
}

/// Names and shapes of the decoder's inputs, read from the graph.
#[derive(Clone, Debug)]
struct Layout {
    has_position_ids: bool,
    /// `past_key_values.{i}.key`/`.value` pairs, in layer order, with their `present` names.
    cache: Vec<[(String, String); 2]>,
    kv_heads: usize,
    head_dim: usize,
    kv_type: TensorElementType,
}

/// One generated sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// Generated token ids, the stop token excluded.
    pub tokens: Vec<u32>,
    /// The decoded text, cut before a stop string.
    pub text: String,
    /// `stop` (end-of-sequence token or stop string) or `length` (token limit).
    pub finish_reason: &'static str,
}

/// The result of [`OnnxModel::generate`].
#[derive(Clone, Debug)]
pub struct Generation {
    pub sequences: Vec<Sequence>,
    /// Prompt length of each sequence, in tokens.
    pub prompt_tokens: Vec<usize>,
    /// From the call to the first sampled token (prefill, including waiting for a session).
    pub ttft: Duration,
    /// When each later token of sequence 0 was chosen, relative to the first token.
    pub step_times: Vec<Duration>,
    /// From the call to the end.
    pub total: Duration,
    /// With [`Sampling::record_logits`]: the logits each token of sequence 0 was chosen from.
    pub logits: Vec<Vec<f32>>,
}

struct Pool {
    free: Mutex<Vec<Session>>,
    ready: Condvar,
}

struct Inner {
    dir: PathBuf,
    tokenizer: tokenizers::Tokenizer,
    template: Option<ChatTemplate>,
    defaults: GenDefaults,
    eos: Vec<u32>,
    pad: u32,
    max_positions: Option<usize>,
    layout: Layout,
    provider: Provider,
    fallbacks: Vec<String>,
    pool: Pool,
    device_id: i32,
}

/// A loaded model directory with a pool of ONNX Runtime sessions.
#[derive(Clone)]
pub struct OnnxModel {
    inner: Arc<Inner>,
}

fn unavailable(msg: impl Into<String>) -> BackendError {
    BackendError::Unavailable(msg.into())
}

fn infra(kind: InfraKind, msg: impl Into<String>) -> InfraError {
    InfraError::new(kind, msg)
}

fn read_json(path: &Path) -> Result<Option<Value>, BackendError> {
    match std::fs::read_to_string(path) {
        Ok(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| BackendError::config(format!("{}: invalid json: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BackendError::config(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|n| n as u32)
            .collect(),
        _ => Vec::new(),
    }
}

impl OnnxModel {
    /// Loads `dir` (`model.onnx`, `tokenizer.json`, and when present `tokenizer_config.json`,
    /// `generation_config.json`, `config.json`). Fails with [`BackendError::Unavailable`]
    /// when the runtime or a required GPU is missing, [`BackendError::Config`] when the
    /// directory is not a usable model.
    pub fn load(dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<OnnxModel, BackendError> {
        let dir = dir.as_ref().to_path_buf();
        let onnx = dir.join(&opts.file);
        if !onnx.is_file() {
            return Err(BackendError::config(format!(
                "model file {} does not exist",
                onnx.display()
            )));
        }
        if opts.providers.is_empty() {
            return Err(BackendError::config(
                "`providers` is empty; give at least one of tensorrt, cuda, cpu",
            ));
        }
        if opts.require_gpu && !opts.providers.iter().any(|p| p.is_gpu()) {
            return Err(BackendError::config(
                "`require_gpu: true` but `providers` lists no GPU provider (tensorrt, cuda)",
            ));
        }
        let tokenizer =
            tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| {
                BackendError::config(format!(
                    "cannot load {}: {e}",
                    dir.join("tokenizer.json").display()
                ))
            })?;
        let tok_cfg = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Null);
        let gen_cfg = read_json(&dir.join("generation_config.json"))?.unwrap_or(Value::Null);
        let config = read_json(&dir.join("config.json"))?.unwrap_or(Value::Null);

        let eos_text = token_text(tok_cfg.get("eos_token"));
        let bos_text = token_text(tok_cfg.get("bos_token"));
        let template_src = match std::fs::read_to_string(dir.join("chat_template.jinja")) {
            Ok(s) => Some(s),
            Err(_) => match tok_cfg.get("chat_template") {
                Some(Value::String(s)) => Some(s.clone()),
                // a list of named templates: the `default` one
                Some(Value::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .and_then(|t| t.get("template"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                _ => None,
            },
        };
        let template = template_src
            .map(|src| {
                ChatTemplate::new(
                    &src,
                    bos_text.clone().unwrap_or_default(),
                    eos_text.clone().unwrap_or_default(),
                )
            })
            .transpose()
            .map_err(|e| BackendError::config(format!("{}: {e}", dir.display())))?;

        let mut eos = ids(gen_cfg.get("eos_token_id"));
        if eos.is_empty() {
            eos = ids(config.get("eos_token_id"));
        }
        if let Some(id) = eos_text.as_deref().and_then(|t| tokenizer.token_to_id(t))
            && !eos.contains(&id)
        {
            eos.push(id);
        }
        let pad = ids(gen_cfg.get("pad_token_id"))
            .first()
            .copied()
            .or_else(|| eos.first().copied())
            .unwrap_or(0);
        let defaults = GenDefaults {
            do_sample: gen_cfg.get("do_sample").and_then(Value::as_bool),
            temperature: gen_cfg.get("temperature").and_then(Value::as_f64),
            top_p: gen_cfg.get("top_p").and_then(Value::as_f64),
            top_k: gen_cfg
                .get("top_k")
                .and_then(Value::as_u64)
                .map(|k| k as u32),
            repetition_penalty: gen_cfg.get("repetition_penalty").and_then(Value::as_f64),
        };
        let max_positions = config
            .get("max_position_embeddings")
            .and_then(Value::as_u64)
            .map(|n| n as usize);

        let rt = runtime::runtime(&opts.root).map_err(unavailable)?;
        let (first, provider, fallbacks) = open_session(rt, &onnx, opts)?;
        let layout = read_layout(&first)
            .map_err(|e| BackendError::config(format!("{}: {e}", onnx.display())))?;
        let mut sessions = vec![first];
        for _ in 1..opts.sessions.max(1) {
            let one = LoadOptions {
                providers: vec![provider],
                ..opts.clone()
            };
            sessions.push(open_session(rt, &onnx, &one)?.0);
        }
        Ok(OnnxModel {
            inner: Arc::new(Inner {
                dir,
                tokenizer,
                template,
                defaults,
                eos,
                pad,
                max_positions,
                layout,
                provider,
                fallbacks,
                pool: Pool {
                    free: Mutex::new(sessions),
                    ready: Condvar::new(),
                },
                device_id: opts.device_id,
            }),
        })
    }

    /// The execution provider that runs the model.
    pub fn provider(&self) -> Provider {
        self.inner.provider
    }

    /// Providers tried before it, each with why it could not be used.
    pub fn fallbacks(&self) -> &[String] {
        &self.inner.fallbacks
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// End-of-sequence token ids (`generation_config.json`, `config.json`, the tokenizer's
    /// `eos_token`).
    pub fn eos_ids(&self) -> &[u32] {
        &self.inner.eos
    }

    pub(crate) fn defaults(&self) -> &GenDefaults {
        &self.inner.defaults
    }

    /// Token ids of `text`; special tokens written in the text (`<|im_start|>`) are
    /// recognised, nothing is added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, InfraError> {
        self.inner
            .tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| infra(InfraKind::Other, format!("tokenizer failed: {e}")))
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, InfraError> {
        self.inner
            .tokenizer
            .decode(ids, true)
            .map_err(|e| infra(InfraKind::Other, format!("tokenizer failed: {e}")))
    }

    /// The chat template applied to `messages` with the generation prompt appended.
    pub fn render_chat(
        &self,
        messages: &[Message],
        tools: Option<&[Value]>,
        kwargs: &Map<String, Value>,
    ) -> Result<String, InfraError> {
        let Some(t) = &self.inner.template else {
            return Err(infra(
                InfraKind::Client,
                format!(
                    "{} has no chat_template; use `mode: completion` for this model",
                    self.inner.dir.display()
                ),
            ));
        };
        t.render(messages, tools, kwargs)
            .map_err(|e| infra(InfraKind::Client, e))
    }

    /// Logits of every position of `ids` (one prefill), `[len][vocab]`.
    pub fn prompt_logits(&self, ids: &[u32]) -> Result<Vec<Vec<f32>>, InfraError> {
        let mut session = self.checkout();
        let mut step = Step::new(&self.inner, &mut session)?;
        let (logits, vocab) = step.prefill(std::slice::from_ref(&ids.to_vec()), self.inner.pad)?;
        Ok(logits.chunks(vocab).map(<[f32]>::to_vec).collect())
    }

    /// Generates one sequence per prompt, batched (prompts of different lengths are
    /// left-padded), until each meets an end-of-sequence token, a stop string or
    /// `sampling.max_tokens`.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        sampling: &Sampling,
    ) -> Result<Generation, InfraError> {
        self.generate_rows(prompts, sampling, 0)
    }

    /// [`Self::generate`] for sequences `first_row..` of a larger set, so that the seed of
    /// each sample does not depend on how the set was split into batches.
    pub(crate) fn generate_rows(
        &self,
        prompts: &[Vec<u32>],
        sampling: &Sampling,
        first_row: usize,
    ) -> Result<Generation, InfraError> {
        let start = Instant::now();
        if prompts.is_empty() {
            return Err(infra(InfraKind::Other, "no prompts to generate from"));
        }
        if prompts.iter().any(Vec::is_empty) {
            return Err(infra(
                InfraKind::Client,
                "empty prompt: nothing to continue",
            ));
        }
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let mut max_new = sampling.max_tokens as usize;
        if let Some(ctx) = self.inner.max_positions {
            if longest >= ctx {
                return Err(infra(
                    InfraKind::Client,
                    format!(
                        "prompt of {longest} tokens does not fit the model's context of {ctx} tokens"
                    ),
                ));
            }
            max_new = max_new.min(ctx - longest);
        }
        let mut session = self.checkout();
        let mut step = Step::new(&self.inner, &mut session)?;
        let b = prompts.len();
        let base_seed = sampling.seed.unwrap_or_else(|| rand::rng().random());
        let mut samplers: Vec<Sampler> = (0..b)
            .map(|row| Sampler::new(sampling, base_seed, first_row + row, &prompts[row]))
            .collect();
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
        let mut finish: Vec<Option<&'static str>> = vec![None; b];
        let mut texts: Vec<Option<String>> = vec![None; b];
        let mut recorded = Vec::new();

        let (mut logits, vocab) = step.prefill(prompts, self.inner.pad)?;
        // keep the last position of each row
        let s = longest;
        let mut last: Vec<f32> = (0..b)
            .flat_map(|r| {
                logits[(r * s + s - 1) * vocab..(r * s + s) * vocab]
                    .iter()
                    .copied()
            })
            .collect();
        drop(std::mem::take(&mut logits));
        let mut ttft = None;
        let mut step_times = Vec::new();
        let mut first_at = start;
        for produced in 0..max_new {
            let mut next = vec![self.inner.pad; b];
            let before = out[0].len();
            for row in 0..b {
                if finish[row].is_some() {
                    continue;
                }
                let row_logits = &mut last[row * vocab..(row + 1) * vocab];
                if sampling.record_logits && row == 0 {
                    recorded.push(row_logits.to_vec());
                }
                let tok = samplers[row].pick(row_logits);
                next[row] = tok;
                if !sampling.ignore_eos && self.inner.eos.contains(&tok) {
                    finish[row] = Some("stop");
                    continue;
                }
                out[row].push(tok);
                if !sampling.stop.is_empty() {
                    let text = self.decode(&out[row])?;
                    if let Some(cut) = sampling
                        .stop
                        .iter()
                        .filter_map(|s| text.find(s.as_str()))
                        .min()
                    {
                        texts[row] = Some(text[..cut].to_owned());
                        finish[row] = Some("stop");
                    }
                }
            }
            // Like a stream: the first token (whatever it is), then one entry per visible token
            // of sequence 0 (an end-of-sequence token is not one).
            let now = Instant::now();
            match ttft {
                None => {
                    ttft = Some(now - start);
                    first_at = now;
                }
                Some(_) if out[0].len() > before => step_times.push(now - first_at),
                Some(_) => {}
            }
            if finish.iter().all(Option::is_some) || produced + 1 == max_new {
                break;
            }
            last = step.decode(&next)?;
        }
        let mut sequences = Vec::with_capacity(b);
        for row in 0..b {
            let reason = finish[row].unwrap_or("length");
            let text = match texts[row].take() {
                Some(cut) => cut,
                None => self.decode(&out[row])?,
            };
            sequences.push(Sequence {
                tokens: std::mem::take(&mut out[row]),
                text,
                finish_reason: reason,
            });
        }
        Ok(Generation {
            sequences,
            prompt_tokens: prompts.iter().map(Vec::len).collect(),
            ttft: ttft.unwrap_or_else(|| start.elapsed()),
            step_times,
            total: start.elapsed(),
            logits: recorded,
        })
    }

    fn checkout(&self) -> Checkout<'_> {
        let pool = &self.inner.pool;
        let mut free = pool.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(s) = free.pop() {
                return Checkout {
                    pool,
                    session: Some(s),
                };
            }
            free = pool.ready.wait(free).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A session taken from the pool, returned on drop (also when generation fails).
struct Checkout<'a> {
    pool: &'a Pool,
    session: Option<Session>,
}

impl std::ops::Deref for Checkout<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session.as_ref().expect("session present until drop")
    }
}
impl std::ops::DerefMut for Checkout<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        self.session.as_mut().expect("session present until drop")
    }
}
impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.pool
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(s);
            self.pool.ready.notify_one();
        }
    }
}

/// Opens a session on the first provider of `opts.providers` that registers. Each GPU
/// provider is registered with `error_on_failure`, so a missing CUDA library is an error we
/// see, not ONNX Runtime's silent fallback to the CPU.
fn open_session(
    rt: &runtime::Runtime,
    onnx: &Path,
    opts: &LoadOptions,
) -> Result<(Session, Provider, Vec<String>), BackendError> {
    let mut fallbacks = Vec::new();
    for &p in &opts.providers {
        if p == Provider::Cpu && opts.require_gpu {
            fallbacks.push("cpu: skipped (require_gpu)".to_owned());
            continue;
        }
        match session_with(rt, onnx, p, opts) {
            Ok(s) => return Ok((s, p, fallbacks)),
            Err(why) => fallbacks.push(format!("{}: {why}", p.as_str())),
        }
    }
    let what = if opts.require_gpu {
        "no GPU execution provider could be used (require_gpu)"
    } else {
        "no execution provider could be used"
    };
    Err(unavailable(format!("{what}: {}", fallbacks.join("; "))))
}

fn session_with(
    rt: &runtime::Runtime,
    onnx: &Path,
    p: Provider,
    opts: &LoadOptions,
) -> Result<Session, String> {
    let ep = match p {
        Provider::Cpu => ort::ep::CPU::default().build(),
        Provider::Cuda => cuda_ep(rt, opts.device_id)?,
        Provider::Tensorrt => tensorrt_ep(rt, opts.device_id)?,
    };
    let mut b = Session::builder(&rt.env).map_err(|e| e.to_string())?;
    b = b
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| e.to_string())?;
    if let Some(n) = opts.threads {
        b = b.with_intra_threads(n).map_err(|e| e.to_string())?;
    }
    b = b
        .with_execution_providers([ep.error_on_failure()])
        .map_err(|e| e.to_string())?;
    b.commit_from_file(onnx)
        .map_err(|e| format!("cannot open {}: {e}", onnx.display()))
}

#[cfg(feature = "cuda")]
fn cuda_ep(
    rt: &runtime::Runtime,
    device: i32,
) -> Result<ort::ep::ExecutionProviderDispatch, String> {
    if !rt.providers.iter().any(|p| p == "CUDAExecutionProvider") {
        return Err(format!(
            "onnx runtime {} has no CUDAExecutionProvider (install onnxruntime-gpu)",
            rt.version
        ));
    }
    crate::gpu::check_cuda()?;
    // TF32 matmuls would move fp32 logits by ~1e-3: evaluate the model's own precision.
    Ok(ort::ep::CUDA::default()
        .with_device_id(device)
        .with_tf32(false)
        .build())
}

#[cfg(not(feature = "cuda"))]
fn cuda_ep(_: &runtime::Runtime, _: i32) -> Result<ort::ep::ExecutionProviderDispatch, String> {
    Err("llmtest-onnx was built without the `cuda` feature".into())
}

#[cfg(feature = "tensorrt")]
fn tensorrt_ep(
    rt: &runtime::Runtime,
    device: i32,
) -> Result<ort::ep::ExecutionProviderDispatch, String> {
    if !rt
        .providers
        .iter()
        .any(|p| p == "TensorrtExecutionProvider")
    {
        return Err(format!(
            "onnx runtime {} has no TensorrtExecutionProvider (install onnxruntime-gpu and TensorRT 10)",
            rt.version
        ));
    }
    crate::gpu::check_cuda()?;
    Ok(ort::ep::TensorRT::default().with_device_id(device).build())
}

#[cfg(not(feature = "tensorrt"))]
fn tensorrt_ep(_: &runtime::Runtime, _: i32) -> Result<ort::ep::ExecutionProviderDispatch, String> {
    Err("llmtest-onnx was built without the `tensorrt` feature".into())
}

fn read_layout(session: &Session) -> Result<Layout, String> {
    let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    for required in ["input_ids", "attention_mask"] {
        if !names.contains(&required) {
            return Err(format!(
                "the graph has no `{required}` input (inputs: {})",
                names.join(", ")
            ));
        }
    }
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    if !outputs.contains(&"logits") {
        return Err(format!(
            "the graph has no `logits` output (outputs: {})",
            outputs.join(", ")
        ));
    }
    let mut cache = Vec::new();
    let mut kv = None;
    for layer in 0.. {
        let k = format!("past_key_values.{layer}.key");
        let v = format!("past_key_values.{layer}.value");
        let Some(input) = session.inputs().iter().find(|i| i.name() == k) else {
            break;
        };
        if !names.contains(&v.as_str()) {
            return Err(format!("`{k}` has no matching `{v}` input"));
        }
        let (pk, pv) = (
            format!("present.{layer}.key"),
            format!("present.{layer}.value"),
        );
        for o in [&pk, &pv] {
            if !outputs.contains(&o.as_str()) {
                return Err(format!("the graph has no `{o}` output for its `{k}` input"));
            }
        }
        if kv.is_none() {
            let shape = input
                .dtype()
                .tensor_shape()
                .ok_or_else(|| format!("`{k}` is not a tensor"))?;
            let ty = input
                .dtype()
                .tensor_type()
                .ok_or_else(|| format!("`{k}` is not a tensor"))?;
            if shape.len() != 4 || shape[1] <= 0 || shape[3] <= 0 {
                return Err(format!(
                    "`{k}` must be [batch, kv_heads, past, head_dim] with fixed heads and head_dim, not {:?}",
                    &shape[..]
                ));
            }
            kv = Some((shape[1] as usize, shape[3] as usize, ty));
        }
        cache.push([(k, pk), (v, pv)]);
    }
    let Some((kv_heads, head_dim, kv_type)) = kv else {
        return Err("the graph has no `past_key_values.0.key` input: export the decoder with its KV cache (Optimum `--task text-generation-with-past`)".into());
    };
    if !matches!(
        kv_type,
        TensorElementType::Float32 | TensorElementType::Float16
    ) {
        return Err(format!(
            "unsupported KV-cache element type {kv_type:?} (float32 and float16 are supported)"
        ));
    }
    Ok(Layout {
        has_position_ids: names.contains(&"position_ids"),
        cache,
        kv_heads,
        head_dim,
        kv_type,
    })
}

/// The state of one batched generation on one session: the KV cache (on the provider's
/// device, bound with IoBinding so it is never copied to the host between steps), the
/// attention mask and the positions.
struct Step<'s> {
    inner: &'s Inner,
    session: &'s mut Session,
    binding: ort::session::IoBinding,
    cache_mem: MemoryInfo<'static>,
    host_mem: MemoryInfo<'static>,
    past: Vec<DynValue>,
    mask: Vec<Vec<i64>>,
    next_pos: Vec<i64>,
}

fn ort_err(what: &str) -> impl Fn(ort::Error) -> InfraError + '_ {
    move |e| infra(InfraKind::Other, format!("onnx runtime {what} failed: {e}"))
}

impl<'s> Step<'s> {
    fn new(inner: &'s Inner, session: &'s mut Session) -> Result<Step<'s>, InfraError> {
        let binding = session.create_binding().map_err(ort_err("io binding"))?;
        let host_mem = MemoryInfo::new(
            AllocationDevice::CPU,
            0,
            AllocatorType::Device,
            MemoryType::Default,
        )
        .map_err(ort_err("memory info"))?;
        let cache_mem = match inner.provider {
            Provider::Cpu => MemoryInfo::new(
                AllocationDevice::CPU,
                0,
                AllocatorType::Device,
                MemoryType::Default,
            ),
            Provider::Cuda | Provider::Tensorrt => MemoryInfo::new(
                AllocationDevice::CUDA,
                inner.device_id,
                AllocatorType::Device,
                MemoryType::Default,
            ),
        }
        .map_err(ort_err("memory info"))?;
        Ok(Step {
            inner,
            session,
            binding,
            cache_mem,
            host_mem,
            past: Vec::new(),
            mask: Vec::new(),
            next_pos: Vec::new(),
        })
    }

    /// Runs the prompts (left-padded to one length); returns logits `[batch * len * vocab]`
    /// and the vocabulary size.
    fn prefill(&mut self, prompts: &[Vec<u32>], pad: u32) -> Result<(Vec<f32>, usize), InfraError> {
        let b = prompts.len();
        let s = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * s);
        let mut pos = Vec::with_capacity(b * s);
        self.mask.clear();
        self.next_pos.clear();
        for p in prompts {
            let padding = s - p.len();
            ids.extend(std::iter::repeat_n(pad as i64, padding).chain(p.iter().map(|&t| t as i64)));
            pos.extend(std::iter::repeat_n(1, padding).chain(0..p.len() as i64));
            self.mask.push(
                std::iter::repeat_n(0, padding)
                    .chain(std::iter::repeat_n(1, p.len()))
                    .collect(),
            );
            self.next_pos.push(p.len() as i64);
        }
        let layout = &self.inner.layout;
        let shape = [b as i64, layout.kv_heads as i64, 0, layout.head_dim as i64];
        self.past = layout
            .cache
            .iter()
            .flat_map(|_| [0, 1])
            .map(|_| empty_cache(layout.kv_type, shape))
            .collect::<Result<_, _>>()
            .map_err(ort_err("creating the empty cache"))?;
        self.run(ids, pos, b, s)
    }

    /// One token per sequence; returns the logits `[batch * vocab]`.
    fn decode(&mut self, tokens: &[u32]) -> Result<Vec<f32>, InfraError> {
        let ids = tokens.iter().map(|&t| t as i64).collect();
        for m in &mut self.mask {
            m.push(1);
        }
        let pos = self.next_pos.clone();
        for p in &mut self.next_pos {
            *p += 1;
        }
        let (logits, _) = self.run(ids, pos, tokens.len(), 1)?;
        Ok(logits)
    }

    fn run(
        &mut self,
        ids: Vec<i64>,
        pos: Vec<i64>,
        b: usize,
        s: usize,
    ) -> Result<(Vec<f32>, usize), InfraError> {
        let e = ort_err("run");
        let total = self.mask[0].len();
        let mask: Vec<i64> = self.mask.iter().flatten().copied().collect();
        let binding = &mut self.binding;
        binding.clear();
        binding
            .bind_input(
                "input_ids",
                &Tensor::from_array(([b as i64, s as i64], ids)).map_err(&e)?,
            )
            .map_err(&e)?;
        binding
            .bind_input(
                "attention_mask",
                &Tensor::from_array(([b as i64, total as i64], mask)).map_err(&e)?,
            )
            .map_err(&e)?;
        if self.inner.layout.has_position_ids {
            binding
                .bind_input(
                    "position_ids",
                    &Tensor::from_array(([b as i64, s as i64], pos)).map_err(&e)?,
                )
                .map_err(&e)?;
        }
        let layout = &self.inner.layout;
        for (i, [(pk, ok), (pv, ov)]) in layout.cache.iter().enumerate() {
            binding
                .bind_input(pk.as_str(), &self.past[2 * i])
                .map_err(&e)?;
            binding
                .bind_input(pv.as_str(), &self.past[2 * i + 1])
                .map_err(&e)?;
            binding
                .bind_output_to_device(ok.as_str(), &self.cache_mem)
                .map_err(&e)?;
            binding
                .bind_output_to_device(ov.as_str(), &self.cache_mem)
                .map_err(&e)?;
        }
        binding
            .bind_output_to_device("logits", &self.host_mem)
            .map_err(&e)?;
        let mut outputs = self.session.run_binding(binding).map_err(&e)?;
        let logits = outputs
            .remove("logits")
            .ok_or_else(|| infra(InfraKind::Other, "onnx runtime returned no logits"))?;
        let mut past = Vec::with_capacity(self.past.len());
        for [(_, ok), (_, ov)] in &layout.cache {
            for name in [ok, ov] {
                past.push(outputs.remove(name.as_str()).ok_or_else(|| {
                    infra(
                        InfraKind::Other,
                        format!("onnx runtime returned no `{name}`"),
                    )
                })?);
            }
        }
        drop(outputs);
        self.past = past;
        let (shape, data) = extract_f32(&logits).map_err(&e)?;
        let vocab = *shape.last().unwrap_or(&0) as usize;
        let expect = b * s * vocab;
        if shape.len() != 3 || vocab == 0 || data.len() != expect {
            return Err(infra(
                InfraKind::Other,
                format!("logits have shape {shape:?}, expected [{b}, {s}, vocab]"),
            ));
        }
        Ok((data, vocab))
    }
}

fn empty_cache(ty: TensorElementType, shape: [i64; 4]) -> ort::Result<DynValue> {
    Ok(match ty {
        TensorElementType::Float16 => {
            Tensor::<half::f16>::from_array((shape, Vec::new()))?.into_dyn()
        }
        _ => Tensor::<f32>::from_array((shape, Vec::new()))?.into_dyn(),
    })
}

fn extract_f32(v: &DynValue) -> ort::Result<(Vec<i64>, Vec<f32>)> {
    if let Ok((shape, data)) = v.try_extract_tensor::<f32>() {
        return Ok((shape.to_vec(), data.to_vec()));
    }
    let (shape, data) = v.try_extract_tensor::<half::f16>()?;
    Ok((shape.to_vec(), data.iter().map(|x| x.to_f32()).collect()))
}
