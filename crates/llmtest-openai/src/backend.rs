//! The backend: replicas, retries, limits, `n`, and the managed server's life.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use llmtest_backend::{
    Backend, BackendContext, BackendError, BackendFactory, Choice, InfraError, InfraKind, Request,
    Response, Timings, Usage, parse_options,
};
use llmtest_spec::{GenParams, Message, ModelConfig, Prompt, Role};

use crate::body::build_body;
use crate::failure::scrub;
use crate::limits::{AdaptiveLimit, RateLimit};
use crate::options::{NMode, Options, ReadyCheck, Resolved, resolve};
use crate::response::Attempt;
use crate::server::{Server, free_port};
use crate::transport::Call;
use crate::url::{Endpoint, display_url};

/// `backend: openai`.
pub struct OpenAiFactory;

impl BackendFactory for OpenAiFactory {
    fn name(&self) -> &str {
        "openai"
    }

    fn create(
        &self,
        model: &ModelConfig,
        ctx: &BackendContext,
    ) -> Result<Arc<dyn Backend>, BackendError> {
        let opts: Options = parse_options(model)?;
        let r = resolve(model, opts, &ctx.root, &|k| std::env::var(k).ok())?;
        Ok(Arc::new(OpenAiBackend::new(r)?))
    }
}

struct Replica {
    base: String,
    display: String,
    client: reqwest::Client,
    down_until: Mutex<Option<Instant>>,
}

impl Replica {
    fn new(base: String, r: &Resolved) -> Result<Replica, String> {
        let loopback = reqwest::Url::parse(&base)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]")
            })
            .unwrap_or(false);
        crate::tls::provider();
        let mut b = reqwest::Client::builder()
            .connect_timeout(r.connect_timeout)
            .tcp_nodelay(true)
            // Below the 5 s keep-alive of uvicorn (vLLM, SGLang) and cpp-httplib (llama-server):
            // a connection the server is about to close is not reused.
            .pool_idle_timeout(Duration::from_secs(4))
            .pool_max_idle_per_host(r.max_concurrency.max(1))
            .user_agent(concat!("llmtest/", env!("CARGO_PKG_VERSION")));
        if loopback {
            // A proxy from the environment must not intercept a server on this machine.
            b = b.no_proxy();
        }
        if base.starts_with("http://") {
            // Plain HTTP never verifies a certificate: no trust roots, rather than reading
            // the platform's few hundred (≈ 4 ms of a run's start-up).
            b = b.tls_certs_only([]);
        }
        let client = b
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Replica {
            display: display_url(&base),
            base,
            client,
            down_until: Mutex::new(None),
        })
    }

    fn is_down(&self, now: Instant) -> bool {
        self.down_until.lock().unwrap().is_some_and(|t| t > now)
    }
}

/// What exists once the model can be reached (at once, or after the managed server is ready).
struct Ready {
    replicas: Vec<Replica>,
    server: Option<Arc<Server>>,
    time_to_ready: Option<Duration>,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    failed: AtomicU64,
    stale_connections: AtomicU64,
}

/// An OpenAI-compatible server or API (see the crate docs for its options).
pub struct OpenAiBackend {
    r: Resolved,
    ready: OnceCell<Result<Ready, String>>,
    /// The managed server from the moment it is spawned (before it is ready), for `shutdown`.
    spawned: Mutex<Option<Arc<Server>>>,
    /// `shutdown` was called: no server is started after it.
    closed: AtomicBool,
    /// Facts kept after the server stopped.
    server_facts: Mutex<Map<String, Value>>,
    limit: AdaptiveLimit,
    rate: RateLimit,
    next: AtomicUsize,
    stats: Stats,
}

impl OpenAiBackend {
    pub(crate) fn new(r: Resolved) -> Result<Self, BackendError> {
        let ready = OnceCell::new();
        if r.server.is_none() {
            let replicas = r
                .base_urls
                .iter()
                .map(|u| Replica::new(u.clone(), &r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(BackendError::Unavailable)?;
            let _ = ready.set(Ok(Ready {
                replicas,
                server: None,
                time_to_ready: None,
            }));
        }
        Ok(OpenAiBackend {
            limit: AdaptiveLimit::new(r.max_concurrency, r.adaptive_concurrency),
            rate: RateLimit::new(r.rpm, r.tpm),
            r,
            ready,
            spawned: Mutex::new(None),
            closed: AtomicBool::new(false),
            server_facts: Mutex::new(Map::new()),
            next: AtomicUsize::new(0),
            stats: Stats::default(),
        })
    }

    async fn ready(&self) -> Result<&Ready, InfraError> {
        let r = self.ready.get_or_init(|| self.start_server()).await;
        r.as_ref()
            .map_err(|m| InfraError::new(InfraKind::Unavailable, m.clone()))
    }

    /// Starts the managed server and waits for a real completion from it.
    async fn start_server(&self) -> Result<Ready, String> {
        let cfg = self
            .r
            .server
            .clone()
            .expect("only called with a managed server");
        if self.closed.load(Ordering::SeqCst) {
            return Err(format!(
                "model `{}`: the backend was shut down",
                self.r.model_name
            ));
        }
        let port = if self.r.base_urls[0].contains("{port}") {
            Some(free_port().map_err(|e| format!("no free loopback port: {e}"))?)
        } else {
            None
        };
        let t0 = Instant::now();
        let spawn_cfg = cfg.clone();
        let server = tokio::task::spawn_blocking(move || Server::spawn(&spawn_cfg, port))
            .await
            .map_err(|e| format!("server start panicked: {e}"))??;
        let server = Arc::new(server);
        *self.spawned.lock().unwrap() = Some(server.clone());
        if self.closed.load(Ordering::SeqCst) {
            let s = server.clone();
            let _ = tokio::task::spawn_blocking(move || s.stop()).await;
            return Err(format!(
                "model `{}`: the backend was shut down",
                self.r.model_name
            ));
        }
        {
            let mut f = self.server_facts.lock().unwrap();
            f.insert("server_program".into(), json!(server.program));
            f.insert("server_pid".into(), json!(server.pid));
            if let Some(p) = server.port {
                f.insert("server_port".into(), json!(p));
            }
        }
        let base = match port {
            Some(p) => self.r.base_urls[0].replace("{port}", &p.to_string()),
            None => self.r.base_urls[0].clone(),
        };
        let replica = Replica::new(base, &self.r)?;
        let prompt = match cfg.ready_check {
            ReadyCheck::Chat => Prompt::Chat(vec![Message {
                role: Role::User,
                content: "Say OK.".into(),
            }]),
            ReadyCheck::Completions => Prompt::Completion("OK".into()),
        };
        let params = GenParams {
            max_tokens: Some(1),
            temperature: Some(0.0),
            ..GenParams::default()
        };
        let (endpoint, body) = build_body(&self.r, &prompt, &params, 1, false);
        let body = serde_json::to_vec(&body).expect("json");
        let until = t0 + cfg.ready_timeout;
        let mut pause = Duration::from_millis(25);
        let mut last = String::from("no answer yet");
        loop {
            let now = Instant::now();
            let why = match server.exit_status() {
                Some(status) => Some(format!("exited ({status}) before it was ready")),
                None if now >= until => Some(format!(
                    "was not ready within {:.0} s (last check: {last})",
                    cfg.ready_timeout.as_secs_f64()
                )),
                None => None,
            };
            if let Some(why) = why {
                let s = server.clone();
                let tail = tokio::task::spawn_blocking(move || {
                    s.stop();
                    s.log_tail(15)
                })
                .await
                .unwrap_or_default();
                let msg = format!(
                    "managed server `{}` for model `{}` {why}; its last output:\n{}",
                    server.program,
                    self.r.model_name,
                    if tail.is_empty() {
                        "(none)".into()
                    } else {
                        tail
                    }
                );
                self.server_facts
                    .lock()
                    .unwrap()
                    .insert("server_error".into(), json!(msg));
                return Err(msg);
            }
            // The readiness check is one short, non-streamed request.
            let call = Call {
                stream: false,
                require_done: true,
                read_timeout: Duration::from_secs(30).min(until - now),
                ..self.call(&replica, endpoint, until)
            };
            match call.run(&body).await {
                Ok(_) => break,
                Err(f) => last = f.error.to_string(),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        let ttr = t0.elapsed();
        self.server_facts.lock().unwrap().insert(
            "server_time_to_ready_s".into(),
            json!(round3(ttr.as_secs_f64())),
        );
        Ok(Ready {
            replicas: vec![replica],
            server: Some(server),
            time_to_ready: Some(ttr),
        })
    }

    /// A request to `replica` with the model's settings.
    fn call<'a>(&'a self, replica: &'a Replica, endpoint: Endpoint, deadline: Instant) -> Call<'a> {
        Call {
            client: &replica.client,
            url: format!("{}{}", replica.base, endpoint.path()),
            replica: replica.display.clone(),
            key: self.r.api_key.as_ref(),
            headers: &self.r.headers,
            stream: self.r.stream,
            require_done: self.r.require_done,
            read_timeout: self.r.read_timeout,
            deadline,
            endpoint,
        }
    }

    fn pick<'a>(&self, ready: &'a Ready) -> (usize, &'a Replica) {
        let n = ready.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        for k in 0..n {
            let i = (start + k) % n;
            if !ready.replicas[i].is_down(now) {
                return (i, &ready.replicas[i]);
            }
        }
        // All down: the one that went down first gets the next try.
        let i = (0..n)
            .min_by_key(|i| *ready.replicas[*i].down_until.lock().unwrap())
            .unwrap_or(0);
        (i, &ready.replicas[i])
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .r
            .backoff_initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.r.backoff_max);
        // Equal jitter: at least half the exponential step, so retries still spread out.
        exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
    }

    /// One logical request (`n` choices from one HTTP request), with retries.
    async fn request(
        &self,
        ready: &Ready,
        req: &Request,
        n: u32,
    ) -> Result<(Attempt, usize, u32), InfraError> {
        let (endpoint, body) = build_body(&self.r, &req.prompt, &req.params, n, self.r.stream);
        let bytes = serde_json::to_vec(&body).map_err(|e| {
            InfraError::new(InfraKind::Other, format!("cannot encode the request: {e}"))
        })?;
        let deadline = Instant::now() + self.r.request_timeout;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut retries = 0u32;
        // Each idle pooled connection may be stale; there are at most `max_concurrency`.
        let mut stale_resends = 0usize;
        // Bounded: each pass either returns, or counts a retry (at most `max_retries`), or
        // resends on another connection (bounded by the pool's size).
        loop {
            if self.closed.load(Ordering::SeqCst) {
                // An interrupted run: sending more would keep a managed server busy while it
                // is asked to stop.
                return Err(InfraError::new(
                    InfraKind::Unavailable,
                    format!("model `{}`: the backend was shut down", self.r.model_name),
                )
                .with_retries(retries));
            }
            if let Err(wait) = self.rate.admit(deadline).await {
                return Err(InfraError::new(
                    InfraKind::RateLimited,
                    format!("the model's `rpm`/`tpm` limit would delay this request by {:.0} s, past `request_timeout_s`", wait.as_secs_f64()),
                )
                .with_retries(retries));
            }
            let Some(permit) = self.limit.acquire(deadline).await else {
                return Err(InfraError::new(
                    InfraKind::Timeout,
                    "no concurrency slot freed up within `request_timeout_s`",
                )
                .with_retries(retries));
            };
            let (idx, replica) = self.pick(ready);
            let call = self.call(replica, endpoint, deadline);
            self.stats.attempts.fetch_add(1, Ordering::Relaxed);
            let failure = match call.run(&bytes).await {
                Ok(a) => {
                    drop(permit);
                    self.limit.on_success();
                    *replica.down_until.lock().unwrap() = None;
                    let used = a
                        .usage
                        .as_ref()
                        .map(|u| u.prompt_tokens.unwrap_or(0) + u.completion_tokens.unwrap_or(0))
                        .unwrap_or(bytes.len() as u64 / 4 + a.token_events);
                    self.rate.record_tokens(used);
                    return Ok((a, idx, retries));
                }
                Err(f) => f,
            };
            drop(permit);
            let mut err = failure.error;
            err.message = scrub(&err.message, self.r.api_key.as_ref());
            if err.kind == InfraKind::RateLimited {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                self.limit.on_rate_limited(Duration::from_secs(1));
            }
            let other_replica_up = ready.replicas.len() > 1
                && ready
                    .replicas
                    .iter()
                    .enumerate()
                    .any(|(i, r)| i != idx && !r.is_down(Instant::now()));
            if failure.replica_down {
                *replica.down_until.lock().unwrap() =
                    Some(Instant::now() + self.r.replica_cooldown);
            }
            if failure.stale && stale_resends <= self.r.max_concurrency {
                // As curl does: a reused connection that died before any response is resent
                // on another one and not counted as a retry (llama-server closes its
                // connection after every stream; the request was almost surely never served,
                // and resending an evaluation request is harmless anyway).
                stale_resends += 1;
                self.stats.stale_connections.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !failure.retry || retries >= self.r.max_retries {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                return Err(err.with_retries(retries));
            }
            let delay = match failure.retry_after {
                Some(d) => d.min(self.r.retry_after_max),
                // A dead replica with a live one beside it: go there now.
                None if failure.replica_down && other_replica_up => Duration::ZERO,
                None => self.backoff(retries),
            };
            if Instant::now() + delay >= deadline {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                err.message
                    .push_str("; no time left to retry within `request_timeout_s`");
                return Err(err.with_retries(retries));
            }
            tokio::time::sleep(delay).await;
            retries += 1;
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[async_trait::async_trait]
impl Backend for OpenAiBackend {
    /// llama.cpp's and vLLM's `/tokenize` (beside `/v1`); other servers have none.
    async fn count_tokens(&self, text: &str) -> Option<Result<usize, InfraError>> {
        let p = self.r.provider?;
        let body = match p {
            crate::options::Provider::Llamacpp => json!({"content": text}),
            crate::options::Provider::Vllm => {
                json!({"model": self.r.served_model, "prompt": text, "add_special_tokens": false})
            }
            _ => return None,
        };
        let ready = match self.ready().await {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let replica = ready.replicas.first()?;
        let url = format!("{}/tokenize", replica.base.trim_end_matches("/v1"));
        let mut rb = replica
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .timeout(Duration::from_secs(30));
        if let Some(k) = &self.r.api_key {
            rb = rb.bearer_auth(k.expose());
        }
        let fail =
            |m: String| InfraError::new(InfraKind::Other, scrub(&m, self.r.api_key.as_ref()));
        let resp = match rb.send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                return Some(Err(fail(format!("/tokenize answered HTTP {}", r.status()))
                    .with_status(r.status().as_u16())));
            }
            Err(e) => return Some(Err(fail(format!("/tokenize: {e}")))),
        };
        let v: Value = match resp
            .bytes()
            .await
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => return Some(Err(fail(format!("/tokenize: not JSON: {e}")))),
        };
        Some(
            v.get("tokens")
                .and_then(Value::as_array)
                .map(Vec::len)
                .ok_or_else(|| fail("/tokenize: no `tokens` array".into())),
        )
    }

    async fn generate(&self, req: &Request) -> Result<Response, InfraError> {
        let ready = self.ready().await?;
        let want = req.n.max(1);
        let mut parts: Vec<Attempt> = Vec::new();
        let mut choices: Vec<Choice> = Vec::new();
        let mut facts = Map::new();
        let mut retries = 0;
        let mut replicas = Vec::new();
        // Bounded: each pass adds at least one choice or returns an error.
        while (choices.len() as u32) < want {
            let ask = match self.r.n_mode {
                NMode::Native if choices.is_empty() => want,
                _ => 1,
            };
            let (a, idx, r) = self.request(ready, req, ask).await?;
            retries += r;
            replicas.push(idx);
            if a.choices.is_empty() {
                return Err(InfraError::new(
                    InfraKind::Stream,
                    "the server returned no choices",
                ));
            }
            // A server that ignores `n` answers with fewer choices: the rest come one by one.
            choices.extend(
                a.choices
                    .iter()
                    .take((want as usize) - choices.len())
                    .map(|(_, c)| c.clone()),
            );
            parts.push(a);
        }
        let first = &parts[0];
        let mut timings = Timings {
            ttft_ms: first.ttft_ms,
            ttfa_ms: first.ttfa_ms,
            ..Timings::default()
        };
        let mut decode_ms = 0.0;
        let mut decode_tokens = 0u64;
        let mut all_usage = true;
        let mut usage = Usage::default();
        for a in &parts {
            timings.total_ms += a.total_ms;
            timings.gaps_ms.extend_from_slice(&a.gaps_ms);
            let (tokens, reported) = match a.usage.as_ref().and_then(|u| u.completion_tokens) {
                Some(t) => (t, true),
                None => (a.token_events, false),
            };
            if let Some(d) = a.decode_ms {
                decode_ms += d;
                // The first token of each choice arrives before the decode window opens.
                decode_tokens += tokens.saturating_sub(a.choices.len() as u64);
            }
            match &a.usage {
                Some(u) if reported => {
                    usage.prompt_tokens =
                        Some(usage.prompt_tokens.unwrap_or(0) + u.prompt_tokens.unwrap_or(0));
                    usage.completion_tokens = Some(usage.completion_tokens.unwrap_or(0) + tokens);
                    if let Some(rt) = u.reasoning_tokens {
                        usage.reasoning_tokens = Some(usage.reasoning_tokens.unwrap_or(0) + rt);
                    }
                }
                _ => {
                    all_usage = false;
                    if a.token_events > 0 {
                        usage.completion_tokens =
                            Some(usage.completion_tokens.unwrap_or(0) + a.token_events);
                    }
                }
            }
        }
        if decode_ms > 0.0 && decode_tokens > 0 {
            timings.tokens_per_s = Some(decode_tokens as f64 / (decode_ms / 1000.0));
        }
        usage.counted = !all_usage;
        let usage =
            (usage.completion_tokens.is_some() || usage.prompt_tokens.is_some()).then_some(usage);
        if let Some(p) = self.r.provider {
            facts.insert("provider".into(), json!(p.as_str()));
        }
        if let Some(t) = &first.server_timings {
            // llama.cpp's own measurement of this request (prompt_ms, predicted_per_token_ms…).
            facts.insert("server_timings".into(), t.clone());
        }
        if let Some(m) = &first.served_model {
            // llama-server and vLLM name the model by the path they loaded it from: keep the
            // file name, not this machine's directories (facts end up in cassettes).
            let m = if m.starts_with('/') {
                m.rsplit('/').find(|p| !p.is_empty()).unwrap_or(m)
            } else {
                m
            };
            facts.insert("served_model".into(), json!(m));
        }
        if let Some(fp) = &first.fingerprint {
            facts.insert("system_fingerprint".into(), json!(fp));
        }
        if ready.replicas.len() > 1 {
            facts.insert("replicas_used".into(), json!(replicas));
        }
        if retries > 0 {
            facts.insert("retries".into(), json!(retries));
        }
        Ok(Response {
            choices,
            usage,
            timings,
            facts,
        })
    }

    fn facts(&self) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert("backend".into(), json!("openai"));
        if let Some(p) = self.r.provider {
            f.insert("provider".into(), json!(p.as_str()));
        }
        f.insert("served_model".into(), json!(self.r.served_model));
        for (k, v) in self.server_facts.lock().unwrap().iter() {
            f.insert(k.clone(), v.clone());
        }
        if let Some(Ok(ready)) = self.ready.get() {
            if self.r.server.is_none() {
                f.insert(
                    "base_urls".into(),
                    json!(
                        ready
                            .replicas
                            .iter()
                            .map(|r| r.display.clone())
                            .collect::<Vec<_>>()
                    ),
                );
            }
            if let Some(s) = &ready.server {
                f.insert(
                    "server_peak_rss_mib".into(),
                    json!(round3(s.peak_rss_bytes() as f64 / (1 << 20) as f64)),
                );
                if let Some(st) = s.exit_status() {
                    f.insert("server_exit".into(), json!(st));
                }
            }
            if let Some(t) = ready.time_to_ready {
                f.insert(
                    "server_time_to_ready_s".into(),
                    json!(round3(t.as_secs_f64())),
                );
            }
        }
        let s = &self.stats;
        f.insert("requests".into(), json!(s.requests.load(Ordering::Relaxed)));
        f.insert(
            "http_attempts".into(),
            json!(s.attempts.load(Ordering::Relaxed)),
        );
        f.insert("retries".into(), json!(s.retries.load(Ordering::Relaxed)));
        f.insert(
            "rate_limited_responses".into(),
            json!(s.rate_limited.load(Ordering::Relaxed)),
        );
        f.insert(
            "failed_requests".into(),
            json!(s.failed.load(Ordering::Relaxed)),
        );
        f.insert(
            "stale_connections_resent".into(),
            json!(s.stale_connections.load(Ordering::Relaxed)),
        );
        f.insert("concurrency_limit".into(), json!(self.limit.current()));
        f.insert(
            "concurrency_limit_lowest".into(),
            json!(self.limit.lowest()),
        );
        f
    }

    async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // Also a server still starting up (its readiness check in flight).
        let spawned = self.spawned.lock().unwrap().clone();
        if let Some(s) = spawned {
            let _ = tokio::task::spawn_blocking(move || s.stop()).await;
        }
    }
}
