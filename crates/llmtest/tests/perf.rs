//! Perf suites end to end through the CLI, on a backend whose timings are scripted (so every
//! figure is known exactly): vLLM's metric definitions, failures and timeouts counted and
//! ranked last, bounds failing a trial, prompts sized with the backend's tokenizer, replay
//! refused.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use llmtest::Llmtest;
use llmtest::backend::{
    Backend, BackendContext, BackendError, BackendFactory, Choice, InfraError, InfraKind, Request,
    Response, Timings, Usage,
};
use llmtest::spec::ModelConfig;

/// A server with a known cost model: TTFT = 10 ms + 0.01 ms per prompt token, then one token
/// every 2 ms; every `fail_every`-th request is a 503, a prompt holding `stall` never ends.
/// Its tokenizer counts words.
struct Paced {
    fail_every: usize,
    sleep_ms: u64,
    seen: AtomicUsize,
}

#[async_trait::async_trait]
impl Backend for Paced {
    async fn generate(&self, req: &Request) -> Result<Response, InfraError> {
        let i = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let words = req.prompt.text().split_whitespace().count();
        if req.prompt.text().contains("stall") {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(self.sleep_ms)).await;
        if self.fail_every > 0 && i.is_multiple_of(self.fail_every) {
            return Err(InfraError::new(InfraKind::Server, "overloaded").with_status(503));
        }
        let out = req.params.max_tokens.unwrap_or(16) as u64;
        let ttft = 10.0 + 0.01 * words as f64;
        let gaps = vec![2.0; out as usize - 1];
        Ok(Response {
            choices: vec![Choice::text("x ".repeat(out as usize))],
            usage: Some(Usage {
                prompt_tokens: Some(words as u64),
                completion_tokens: Some(out),
                ..Usage::default()
            }),
            timings: Timings {
                ttft_ms: Some(ttft),
                ttfa_ms: Some(ttft),
                total_ms: ttft + 2.0 * (out - 1) as f64,
                gaps_ms: gaps,
                ..Timings::default()
            },
            ..Response::default()
        })
    }

    async fn count_tokens(&self, text: &str) -> Option<Result<usize, InfraError>> {
        Some(Ok(text.split_whitespace().count()))
    }
}

struct PacedFactory;

impl BackendFactory for PacedFactory {
    fn name(&self) -> &str {
        "paced"
    }
    fn create(
        &self,
        m: &ModelConfig,
        _: &BackendContext,
    ) -> Result<Arc<dyn Backend>, BackendError> {
        let get = |k: &str| m.options.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        Ok(Arc::new(Paced {
            fail_every: get("fail_every") as usize,
            sleep_ms: get("sleep_ms"),
            seen: AtomicUsize::new(0),
        }))
    }
}

const CONFIG: &str = "version: 1
models:
  fast: {backend: paced, sleep_ms: 5}
  flaky: {backend: paced, fail_every: 5}
profiles:
  live: {mode: live, models: [fast, flaky]}
  ci: {mode: replay, models: [fast]}
";

fn project(suite: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("llmtest.yaml"), CONFIG).unwrap();
    std::fs::create_dir_all(dir.path().join("perf")).unwrap();
    std::fs::write(dir.path().join("perf/lat.yaml"), suite).unwrap();
    dir
}

fn run(dir: &std::path::Path, args: &[&str]) -> ExitCode {
    let mut argv = vec!["llmtest", "--root", dir.to_str().unwrap()];
    argv.extend_from_slice(args);
    Llmtest::new().backend(PacedFactory).cli_from(argv)
}

fn results(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("target/llmtest/results.json")).unwrap())
        .unwrap()
}

fn case<'a>(r: &'a serde_json::Value, model: &str, id: &str) -> &'a serde_json::Value {
    r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == model && c["case"] == id)
        .unwrap_or_else(|| panic!("no case {model} {id}"))
}

const SUITE: &str = "version: 1
suite: lat
mode: completion
perf:
  prompt_tokens: [100, 1000]
  output_tokens: 11
  concurrency: [1, 4]
  requests: 20
  warmup: 0
  slo: {ttft_ms: 15, tpot_ms: 3}
  expect:
    ttft_median_ms: {max: 12}
";

#[test]
fn figures_follow_the_vllm_definitions_and_bounds_grade_them() {
    let dir = project(SUITE);
    let code = run(
        dir.path(),
        &[
            "run",
            "--profile",
            "live",
            "--model",
            "fast",
            "perf/lat.yaml",
        ],
    );
    assert_eq!(
        code,
        ExitCode::from(1),
        "the 1000-token prompts miss the TTFT bound"
    );
    let r = results(dir.path());
    let short = &case(&r, "fast", "p100-c4")["perf"];
    assert_eq!(short["prompts"], "tokenizer");
    assert_eq!(
        short["prompt_tokens_mean"], 100.0,
        "sized exactly with the tokenizer"
    );
    assert_eq!(
        (short["requests"].as_u64(), short["failed"].as_u64()),
        (Some(20), Some(0))
    );
    assert_eq!(short["ttft_ms"]["median"], 11.0);
    assert_eq!(short["ttft_ms"]["p99"], 11.0);
    // TPOT = (E2E − TTFT) / (11 − 1) = 20 ms / 10
    assert_eq!(short["tpot_ms"]["median"], 2.0);
    assert_eq!(short["itl_ms"]["n"], 200);
    assert_eq!(short["output_tokens_total"], 220);
    let peak = short["peak_in_flight"].as_u64().unwrap();
    assert!(
        (1..=4).contains(&peak),
        "never more in flight than the concurrency: {peak}"
    );
    // Throughputs are over the wall time.
    let d = short["duration_s"].as_f64().unwrap();
    let tps = short["output_tokens_per_s"].as_f64().unwrap();
    assert!((tps - 220.0 / d).abs() < 1e-6 * tps);
    assert!((short["goodput_per_s"].as_f64().unwrap() - 20.0 / d).abs() < 1e-6 * tps);
    assert_eq!(case(&r, "fast", "p100-c1")["outcome"], "pass");
    let long = case(&r, "fast", "p1000-c1");
    assert_eq!(long["outcome"], "fail", "TTFT 20 ms > 12 ms");
    let a = &long["samples"][0]["assertions"][0];
    assert_eq!(
        (a["type"].as_str(), a["found"].as_str()),
        (Some("ttft_median_ms"), Some("20.0"))
    );
    assert_eq!(
        long["perf"]["goodput_per_s"], 0.0,
        "TTFT 20 ms misses the 15 ms SLO"
    );
    assert!(
        long["timings"].is_null(),
        "no per-case latency mixed into the matrix"
    );
}

#[test]
fn failures_are_counted_shown_and_ranked_last() {
    let dir = project(&SUITE.replace(
        "    ttft_median_ms: {max: 12}\n",
        "    failed_ratio: {max: 0.5}\n    ttft_p90_ms: {max: 100}\n",
    ));
    let code = run(
        dir.path(),
        &[
            "run",
            "--profile",
            "live",
            "--model",
            "flaky",
            "--format",
            "md",
            "perf/lat.yaml",
        ],
    );
    assert_eq!(code, ExitCode::from(1));
    let r = results(dir.path());
    let p = &case(&r, "flaky", "p100-c1")["perf"];
    // Every fifth request fails: 4 of 20, so p90 reaches the failures.
    assert_eq!(
        (p["completed"].as_u64(), p["failed"].as_u64()),
        (Some(16), Some(4))
    );
    assert_eq!(p["errors"]["server"], 4);
    assert_eq!(p["ttft_ms"]["median"], 11.0);
    assert!(p["ttft_ms"]["p90"].is_null(), "beyond every measured value");
    assert_eq!(
        p["ttft_ms"]["mean"], 11.0,
        "means are over completed requests"
    );
    let c = case(&r, "flaky", "p100-c1");
    assert_eq!(c["outcome"], "fail", "a p90 over failures misses its bound");
    let found = c["samples"][0]["assertions"][1]["found"].as_str().unwrap();
    assert_eq!(found, "∞ (4 of 20 requests failed)");
}

#[test]
fn timed_out_requests_count_as_failures() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("llmtest.yaml"), CONFIG).unwrap();
    std::fs::create_dir_all(dir.path().join("perf/data")).unwrap();
    std::fs::write(dir.path().join("perf/data/p.txt"), "one two\nstall here\n").unwrap();
    std::fs::write(
        dir.path().join("perf/t.yaml"),
        "version: 1\nsuite: t\nperf:\n  prompts_from: data/p.txt\n  concurrency: [2]\n  requests: 4\n  warmup: 0\n  timeout_s: 0.3\n",
    )
    .unwrap();
    let code = run(
        dir.path(),
        &["run", "--profile", "live", "--model", "fast", "perf/t.yaml"],
    );
    assert_eq!(code, ExitCode::from(1));
    let r = results(dir.path());
    let p = &case(&r, "fast", "prompts-c2")["perf"];
    assert_eq!(
        (p["failed"].as_u64(), p["timed_out"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(p["prompts"], "file");
}

#[test]
fn a_perf_suite_is_never_replayed() {
    let dir = project(SUITE);
    let code = run(dir.path(), &["run", "--profile", "ci", "perf/lat.yaml"]);
    assert_eq!(code, ExitCode::from(2), "refused before anything runs");
    assert!(!dir.path().join("target/llmtest/results.json").exists());
}
