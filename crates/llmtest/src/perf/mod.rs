//! Perf suites (`perf:` in a suite file, see `llmtest_spec::PerfSpec`): each prompt length ×
//! concurrency (or request rate) is a case; its trial sends the scenario's requests straight
//! to the model's backend (not through the engine's per-model semaphore), measures each one,
//! computes the figures of `vllm bench serve` ([`metrics`]) and grades them with the suite's
//! bounds, so that a latency regression fails a trial as a wrong answer does.
//!
//! Scenarios of a process run one at a time (never two load tests at once), and never from
//! cassettes: the engine refuses a perf suite on a replayed or offline model.

mod metrics;
mod prompts;
mod table;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use llmtest_backend::{Backend, InfraError, InfraKind, Request, Response, Usage};
use llmtest_grade::{AssertionResult, Outcome};
use llmtest_spec::{Diagnostic, Diagnostics, PerfSpec, Profile, Project, RunMode, Scenario, Suite};

use crate::engine::Work;
use crate::results::{CaseResult, SampleResult};

pub use metrics::{Distribution, PerfReport};
pub(crate) use table::{COLUMNS, SERVER_COLUMNS, markdown, tables};

use metrics::{Failure, Measured, RequestRecord};

/// One load test at a time in a process: two at once would measure each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A perf suite on a model that would not answer live is refused before anything runs:
/// replayed timings are not latency.
pub(crate) fn refuse_replay(profile: &Profile, suites: &[Arc<Suite>]) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::default();
    if profile.mode != RunMode::Live {
        for s in suites.iter().filter(|s| s.perf.is_some()) {
            let spec = s.perf.as_ref().expect("filtered");
            diags.push(
                Diagnostic::new(
                    spec.loc.clone(),
                    format!(
                        "perf suite `{}` cannot run in {} mode (profile `{}`): recorded timings are not latency",
                        s.name,
                        profile.mode.as_str(),
                        profile.name
                    ),
                )
                .with_hint(format!(
                    "run it against live models, e.g. `llmtest run --profile live-local {}`",
                    s.file.display()
                )),
            );
        }
    }
    if diags.is_empty() { Ok(()) } else { Err(diags) }
}

/// Runs one scenario (a perf case) on a backend and grades it; `result` is the case's
/// empty result to fill.
pub(crate) async fn run_case(
    backend: Arc<dyn Backend>,
    project: &Project,
    w: &Work,
    spec: &PerfSpec,
    mut result: CaseResult,
) -> CaseResult {
    let suite = &w.suite;
    let case = w.case();
    let base = Request {
        model: w.model.clone(),
        suite: suite.name.clone(),
        case_id: case.id.clone(),
        prompt: case.prompt.clone(),
        params: project
            .models
            .get(&w.model)
            .map(|m| m.params.merged(&case.params))
            .unwrap_or_else(|| case.params.clone()),
        n: 1,
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(sc) = spec.scenario(&case.id) else {
        result.error = Some(InfraError::new(
            InfraKind::Other,
            format!("no perf scenario `{}`", case.id),
        ));
        return result;
    };
    let report = match run_scenario(backend, &base, suite, spec, sc).await {
        Ok(r) => r,
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    if report.completed == 0 {
        // Nothing answered: the deployment is down or misconfigured, not slow.
        result.error = Some(InfraError::new(
            InfraKind::Other,
            format!(
                "all {} perf requests failed; first: {}",
                report.requests,
                report.first_error.as_deref().unwrap_or("?")
            ),
        ));
        result.perf = Some(Box::new(report));
        return result;
    }
    let assertions: Vec<AssertionResult> = spec
        .checks
        .iter()
        .map(|c| {
            let (pass, expected, found) = metrics::check(&report, c);
            AssertionResult {
                kind: c.metric.clone(),
                pass,
                score: if pass { 1.0 } else { 0.0 },
                weight: 1.0,
                expected,
                found,
                extracted: None,
                outcome: None,
                detail: None,
            }
        })
        .collect();
    let passed = assertions.iter().filter(|a| a.pass).count();
    let score = if assertions.is_empty() {
        1.0
    } else {
        passed as f64 / assertions.len() as f64
    };
    let outcome = if passed == assertions.len() {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    result.samples.push(SampleResult {
        index: 0,
        outcome,
        score,
        answer: summary_line(&report),
        output: String::new(),
        extracted: None,
        reasoning: None,
        reasoning_chars: 0,
        reasoning_status: "none".into(),
        finish_reason: None,
        assertions,
    });
    result.outcome = outcome;
    result.score = score;
    result.usage = Some(Usage {
        prompt_tokens: Some(report.input_tokens_total),
        completion_tokens: Some(report.output_tokens_total),
        reasoning_tokens: None,
        counted: false,
    });
    result.perf = Some(Box::new(report));
    result
}

/// One line for a failed trial's message: what the scenario measured.
fn summary_line(r: &PerfReport) -> String {
    let ms = |v: Option<f64>| v.map_or("∞".into(), metrics::num);
    format!(
        "{} requests, {} failed; TTFT median {} ms, p99 {} ms; TPOT median {} ms; {} output tokens/s",
        r.requests,
        r.failed,
        ms(r.ttft_ms.median),
        ms(r.ttft_ms.p99),
        ms(r.tpot_ms.median),
        metrics::num(r.output_tokens_per_s)
    )
}

/// Sends the warm-up and the measured requests of `sc` and computes its figures.
async fn run_scenario(
    backend: Arc<dyn Backend>,
    base: &Request,
    suite: &Suite,
    spec: &PerfSpec,
    sc: &Scenario,
) -> Result<PerfReport, InfraError> {
    let warmup = spec.warmup as usize;
    let n = spec.requests as usize;
    let seed = spec.seed ^ hash(&sc.id);
    let (texts, sizing) = match (&spec.prompts, sc.prompt_tokens) {
        (Some(ps), _) => (
            (0..warmup + n).map(|i| ps[i % ps.len()].clone()).collect(),
            prompts::Sizing::File,
        ),
        (None, Some(t)) => prompts::synthetic(backend.as_ref(), t, warmup + n, seed).await?,
        (None, None) => {
            return Err(InfraError::new(
                InfraKind::Other,
                "perf scenario without prompts",
            ));
        }
    };
    let request = |i: usize| Request {
        case_id: format!("{}#{i}", base.case_id),
        prompt: prompts::as_prompt(suite.mode, texts[i].clone()),
        ..base.clone()
    };
    let timeout = Duration::from_secs_f64(spec.timeout_s);
    // Unbounded with a request rate alone: every request is sent when it arrives.
    let c = sc.concurrency.map_or(n.max(1), |c| c.max(1) as usize);
    // Warm-up: at the scenario's concurrency, not measured.
    for chunk in (0..warmup).collect::<Vec<_>>().chunks(c) {
        let mut set = tokio::task::JoinSet::new();
        for i in chunk {
            let (b, r) = (backend.clone(), request(*i));
            set.spawn(async move {
                let _ = tokio::time::timeout(timeout, b.generate(&r)).await;
            });
        }
        while set.join_next().await.is_some() {}
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(c));
    let schedule = sc
        .request_rate
        .map(|rate| prompts::arrivals(n, rate, spec.burstiness, seed));
    let deadline = spec.duration_s.map(Duration::from_secs_f64);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    let t0 = Instant::now();
    for i in 0..n {
        if let Some(at) = schedule.as_ref().map(|s| s[i]) {
            tokio::time::sleep_until((t0 + Duration::from_secs_f64(at)).into()).await;
        }
        let permit = sem.clone().acquire_owned().await.expect("never closed");
        if deadline.is_some_and(|d| t0.elapsed() >= d) {
            break;
        }
        let (b, req) = (backend.clone(), request(warmup + i));
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        set.spawn(async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let sent = Instant::now();
            let r = tokio::time::timeout(timeout, b.generate(&req)).await;
            let wall_ms = sent.elapsed().as_secs_f64() * 1000.0;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            (
                i,
                RequestRecord {
                    outcome: record(r, timeout, wall_ms),
                },
            )
        });
    }
    let mut records: Vec<(usize, RequestRecord)> = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        match r {
            Ok(rec) => records.push(rec),
            Err(e) => records.push((
                usize::MAX,
                RequestRecord {
                    outcome: Err(Failure {
                        kind: "other".into(),
                        message: format!("request task failed: {e}"),
                    }),
                },
            )),
        }
    }
    let duration_s = t0.elapsed().as_secs_f64();
    records.sort_by_key(|(i, _)| *i);
    let records: Vec<RequestRecord> = records.into_iter().map(|(_, r)| r).collect();
    let mut report = metrics::compute(&records, duration_s, &spec.slo);
    report.prompt_tokens_target = sc.prompt_tokens;
    report.concurrency = sc.concurrency;
    report.request_rate = sc.request_rate;
    report.burstiness = spec.burstiness;
    report.prompts = sizing.as_str().into();
    report.peak_in_flight = peak.load(Ordering::SeqCst);
    report.resources = resources(backend.as_ref());
    Ok(report)
}

/// A request's outcome as a record: an infrastructure error or a timeout is a failure.
/// Latency is measured from when the runner issued the request, as `vllm bench serve` does:
/// time the backend spent before sending it (its own concurrency limit, building the body)
/// is added to the first-token times it reports.
fn record(
    r: Result<Result<Response, InfraError>, tokio::time::error::Elapsed>,
    timeout: Duration,
    wall_ms: f64,
) -> Result<Measured, Failure> {
    match r {
        Err(_) => Err(Failure {
            kind: "timeout".into(),
            message: format!("no complete answer within {} s", timeout.as_secs_f64()),
        }),
        Ok(Err(e)) => Err(Failure {
            kind: e.kind.as_str().into(),
            message: e.to_string(),
        }),
        Ok(Ok(resp)) => {
            let t = &resp.timings;
            let usage = resp.usage.as_ref();
            let output_tokens = usage
                .and_then(|u| u.completion_tokens)
                .unwrap_or(t.gaps_ms.len() as u64 + u64::from(t.ttft_ms.is_some()));
            let before_send = (wall_ms - t.total_ms).max(0.0);
            Ok(Measured {
                ttft_ms: t.ttft_ms.map(|v| v + before_send),
                ttfa_ms: t.ttfa_ms.map(|v| v + before_send),
                e2e_ms: t.total_ms + before_send,
                gaps_ms: t.gaps_ms.clone(),
                prompt_tokens: usage.and_then(|u| u.prompt_tokens),
                output_tokens,
                server_prompt_ms: server_timing(&resp, "prompt_ms"),
                server_tpot_ms: server_timing(&resp, "predicted_per_token_ms"),
            })
        }
    }
}

/// A number of the server's own `timings` (llama.cpp), carried in the response's facts.
fn server_timing(resp: &Response, key: &str) -> Option<f64> {
    resp.facts.get("server_timings")?.get(key)?.as_f64()
}

/// The backend's resource facts (start-up time, peak memory, GPU), and this process's own
/// peak resident memory (the model itself, for an in-process backend).
fn resources(backend: &dyn Backend) -> Map<String, Value> {
    let mut m: Map<String, Value> = backend
        .facts()
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with("server_time_to_ready")
                || k.contains("rss")
                || k.starts_with("gpu")
                || k == "concurrency_limit"
                || k == "execution_provider"
        })
        .collect();
    if let Some(kib) = proc_status_kib("VmHWM") {
        m.insert(
            "llmtest_peak_rss_mib".into(),
            json!((kib as f64 / 1024.0 * 10.0).round() / 10.0),
        );
    }
    m
}

/// A `kB` field of `/proc/self/status` (Linux).
fn proc_status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn hash(s: &str) -> u64 {
    // FNV-1a: stable across platforms and releases, unlike `DefaultHasher`.
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
