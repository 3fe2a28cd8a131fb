//! llmtest's local ONNX Runtime backend: evaluate the exact ONNX artifact you ship, on the
//! CPU anywhere or with the CUDA / TensorRT execution providers on a GPU, with no server in
//! between.
//!
//! ```yaml
//! # llmtest.yaml
//! models:
//!   tiny-onnx:
//!     backend: onnx
//!     path: fixtures/models/tiny-qwen2   # model.onnx, tokenizer.json, tokenizer_config.json, …
//!     providers: [cpu]                   # tried in order, e.g. [tensorrt, cuda, cpu]
//!     require_gpu: false                 # true: no GPU is an infrastructure error, never a CPU run
//!     threads: 2                         # intra-op threads (default: one per core)
//! ```
//!
//! The same model from Rust (skips quietly where no ONNX Runtime library is installed):
//!
//! ```
//! use llmtest_onnx::{LoadOptions, OnnxModel, Sampling};
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/models/tiny-qwen2");
//! let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
//! let opts = LoadOptions { root: root.into(), ..LoadOptions::default() };
//! match OnnxModel::load(dir, &opts) {
//!     Ok(model) => {
//!         let ids = model.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n").unwrap();
//!         let out = model.generate(&[ids], &Sampling::greedy(16)).unwrap();
//!         assert_eq!(out.sequences[0].text, "I am a tiny test model.");
//!     }
//!     // no ONNX Runtime library installed: say so; anything else is a real failure
//!     Err(e) => assert!(e.to_string().contains("library not found"), "{e}"),
//! }
//! ```
//!
//! * The ONNX Runtime library is loaded at run time (`ort`'s `load-dynamic`): from
//!   `ORT_DYLIB_PATH`, else the `onnxruntime` wheel in `.venv` / `.venv-onnx` / `$VIRTUAL_ENV`,
//!   else the one `python3` imports. [`doctor`] says what was found.
//! * The model directory holds a decoder exported with its KV cache (inputs `input_ids`,
//!   `attention_mask`, optionally `position_ids`, `past_key_values.{i}.key/value`; outputs
//!   `logits`, `present.{i}.key/value` — Optimum's and onnxruntime-genai's layout), its
//!   `tokenizer.json`, the `chat_template` of `tokenizer_config.json` (rendered with
//!   minijinja as transformers renders it) and `generation_config.json`'s defaults.
//! * Every request is a prefill and then one decode step per token for all its samples at
//!   once; the cache stays on the execution provider's device (IoBinding), never copied to
//!   the host between steps. Sessions are pooled (`sessions:`), and all of it runs off the
//!   async runtime.
//! * Providers are registered with `error_on_failure`: a provider that cannot run is skipped
//!   *visibly* (`provider_fallbacks` in the facts) and `require_gpu: true` turns a CPU
//!   fallback into an infrastructure error. Responses record the provider that ran.
//! * With the `cuda` feature the results carry the GPU's name, driver and memory (before and
//!   after loading, peak) from cudarc and NVML.
//!
//! Not supported: constrained decoding (`response_format` is recorded as not enforced),
//! `extra_body` keys other than `repetition_penalty`, `min_p`, `top_k`, `ignore_eos` and
//! `chat_template_kwargs` (refused, not ignored).

mod backend;
mod chat;
mod gpu;
mod model;
mod runtime;
mod sampling;

use std::path::Path;
use std::sync::Arc;

pub use backend::OnnxBackend;
pub use model::{Generation, LoadOptions, OnnxModel, Provider, Sequence};
pub use sampling::Sampling;

/// The factory of `backend: onnx`, for registration with llmtest.
pub fn factory() -> Arc<dyn llmtest_backend::BackendFactory> {
    Arc::new(backend::OnnxFactory)
}

/// What `llmtest doctor` prints about this backend: the ONNX Runtime library (where it was
/// found, or every place looked at), its version and execution providers, and the GPU.
/// Looks for `.venv` in the current directory; loads the library if it is not loaded yet.
pub fn doctor() -> String {
    doctor_at(Path::new("."))
}

/// [`doctor`] for the project rooted at `root`.
pub fn doctor_at(root: &Path) -> String {
    let mut out = String::new();
    match runtime::runtime(root) {
        Ok(rt) => {
            out.push_str(&format!(
                "onnx runtime {} from {} (found via {})\n",
                rt.version,
                rt.found.path.display(),
                rt.found.how
            ));
            out.push_str(&format!(
                "execution providers in the library: {}\n",
                if rt.providers.is_empty() {
                    "none reported".into()
                } else {
                    rt.providers.join(", ")
                }
            ));
        }
        Err(e) => out.push_str(&format!("onnx runtime: not available: {e}\n")),
    }
    let features: Vec<&str> = [
        cfg!(feature = "cuda").then_some("cuda"),
        cfg!(feature = "tensorrt").then_some("tensorrt"),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.push_str(&format!(
        "llmtest-onnx providers built in: cpu{}\n",
        features
            .iter()
            .map(|f| format!(", {f}"))
            .collect::<String>()
    ));
    out.push_str(&gpu::describe(0));
    out
}
