//! Against a real OpenAI-compatible server: llama.cpp's `llama-server` (built by
//! `ci/build-llama-server.sh`) serving the repository's tiny model, started and stopped by
//! the backend itself as a managed server.
//!
//! The binary comes from `LLMTEST_LLAMA_SERVER` or `ci/cache/llama-server/bin/llama-server`;
//! when it (or the model) is missing the tests print a skip line and pass, unless
//! `LLMTEST_REQUIRE_EXTERNAL=1`, which makes them fail.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use llmtest_backend::{Backend, BackendContext, InfraKind};
use support::{chat, completion, model};

/// The tiny model's answer to every prompt (see `fixtures/models/README.md`).
const ANSWER: &str = "I am a tiny test model.";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The server binary and the model, or `None` after printing why the test is skipped.
fn prerequisites(test: &str) -> Option<(PathBuf, PathBuf)> {
    let bin = std::env::var_os("LLMTEST_LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("ci/cache/llama-server/bin/llama-server"));
    let gguf = root().join("fixtures/models/tiny-qwen2/model.gguf");
    let missing: Vec<String> = [
        (
            &bin,
            "llama-server (run `bash ci/build-llama-server.sh` or set LLMTEST_LLAMA_SERVER)",
        ),
        (&gguf, "the tiny model"),
    ]
    .iter()
    .filter(|(p, _)| !p.is_file())
    .map(|(p, what)| format!("{what} at {}", p.display()))
    .collect();
    if missing.is_empty() {
        return Some((bin, gguf));
    }
    if std::env::var("LLMTEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!(
            "{test}: LLMTEST_REQUIRE_EXTERNAL=1 but missing {}",
            missing.join(", ")
        );
    }
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: missing {}",
        missing.join(", ")
    );
    None
}

fn managed(bin: &PathBuf, gguf: &PathBuf, extra: Value) -> Arc<dyn Backend> {
    let mut opts = json!({
        "provider": "llamacpp",
        "model": "tiny-qwen2",
        "server": {
            "command": [bin, "-m", gguf, "--host", "{host}", "--port", "{port}", "-c", "2048", "-np", "4", "--jinja", "--no-webui"],
            "ready_timeout_s": 120,
        },
    });
    for (k, v) in extra.as_object().unwrap() {
        opts[k] = v.clone();
    }
    llmtest_openai::factory()
        .create(
            &model("tiny", 4, opts),
            &BackendContext {
                root: root(),
                ..Default::default()
            },
        )
        .unwrap()
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_llama_server_end_to_end() {
    let Some((bin, gguf)) = prerequisites("managed_llama_server_end_to_end") else {
        return;
    };
    let b = managed(&bin, &gguf, json!({}));

    // Chat, streamed (the default): exact text, real timings, the server's token counts.
    let r = b.generate(&chat("Who are you?", 1)).await.unwrap();
    assert_eq!(r.choices.len(), 1);
    assert_eq!(r.choices[0].text, ANSWER);
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("stop"));
    let t = &r.timings;
    let (ttft, ttfa) = (t.ttft_ms.unwrap(), t.ttfa_ms.unwrap());
    assert!(ttft > 0.0 && ttfa >= ttft && t.total_ms >= ttfa, "{t:?}");
    assert!(
        !t.gaps_ms.is_empty() && t.tokens_per_s.unwrap() > 0.0,
        "{t:?}"
    );
    let u = r.usage.as_ref().unwrap();
    assert!(
        u.completion_tokens.unwrap() >= 6 && u.prompt_tokens.unwrap() > 0 && !u.counted,
        "{u:?}"
    );
    assert_eq!(r.facts["provider"], "llamacpp");

    let f = b.facts();
    let pid = f["server_pid"].as_i64().unwrap();
    let port = f["server_port"].as_u64().unwrap();
    assert!(alive(pid));
    assert!(f["server_time_to_ready_s"].as_f64().unwrap() > 0.0, "{f:?}");
    eprintln!(
        "llama-server ready in {} s, peak RSS so far {} MiB",
        f["server_time_to_ready_s"], f["server_peak_rss_mib"]
    );

    // Completions, streamed.
    let r = b
        .generate(&completion("Once upon a time", 1))
        .await
        .unwrap();
    assert_eq!(r.choices[0].text, ANSWER);
    assert!(r.timings.ttft_ms.is_some());

    // n > 1 the preset's way (one request per sample).
    let r = b.generate(&chat("Who are you?", 3)).await.unwrap();
    assert_eq!(
        r.choices
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>(),
        [ANSWER; 3]
    );

    // Concurrent requests across the server's four slots.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            b.generate(&chat(&format!("question {i}"), 1)).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().choices[0].text, ANSWER);
    }

    // The same server, unmanaged: not streamed, and n sent natively.
    let url = format!("http://127.0.0.1:{port}/v1");
    let plain = llmtest_openai::factory()
        .create(&model("tiny-plain", 2, json!({"base_url": url, "stream": false, "n": "native", "max_retries": 1, "backoff_initial_s": 0.05})), &BackendContext::default())
        .unwrap();
    let r = plain.generate(&chat("Who are you?", 2)).await.unwrap();
    assert_eq!(
        r.choices
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>(),
        [ANSWER; 2]
    );
    assert!(r.timings.ttft_ms.is_none() && r.timings.total_ms > 0.0);
    let r = plain.generate(&completion("Hello", 1)).await.unwrap();
    assert_eq!(r.choices[0].text, ANSWER);
    let streamed_native = llmtest_openai::factory()
        .create(
            &model("tiny-native", 2, json!({"base_url": url, "n": "native"})),
            &BackendContext::default(),
        )
        .unwrap();
    let r = streamed_native
        .generate(&chat("Who are you?", 2))
        .await
        .unwrap();
    assert_eq!(
        r.choices
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>(),
        [ANSWER; 2]
    );

    // Generation params reach llama-server: a one-token limit truncates.
    let mut req = chat("Who are you?", 1);
    req.params.max_tokens = Some(1);
    let r = b.generate(&req).await.unwrap();
    assert!(r.choices[0].truncated(), "{:?}", r.choices[0]);
    assert_eq!(r.choices[0].text, "I");

    // Stopped by pid at the end, and its memory recorded.
    b.shutdown().await;
    let until = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !alive(pid),
        "llama-server {pid} still running after shutdown"
    );
    let f = b.facts();
    let rss = f["server_peak_rss_mib"].as_f64().unwrap();
    assert!(rss > 1.0, "{f:?}");
    eprintln!(
        "llama-server peak RSS {rss} MiB; facts {}",
        Value::Object(f.clone())
    );
    // Requests after shutdown fail as infrastructure, never as answers.
    let e = plain.generate(&chat("anyone?", 1)).await.unwrap_err();
    assert_eq!(e.kind, InfraKind::Connection, "{e}");
}

#[tokio::test]
async fn a_server_that_cannot_start_is_unavailable_with_its_output() {
    let Some((bin, _)) = prerequisites("a_server_that_cannot_start_is_unavailable_with_its_output")
    else {
        return;
    };
    let b = managed(
        &bin,
        &root().join("fixtures/models/tiny-qwen2/no-such-model.gguf"),
        json!({}),
    );
    let t = Instant::now();
    let e = b.generate(&chat("hi", 1)).await.unwrap_err();
    assert_eq!(e.kind, InfraKind::Unavailable, "{e}");
    assert!(e.message.contains("exited"), "{e}");
    assert!(
        e.message.contains("no-such-model"),
        "the server's own output explains why: {e}"
    );
    assert!(t.elapsed() < Duration::from_secs(60));
    // Every later request gets the same answer without starting another server.
    let e2 = b.generate(&chat("hi", 1)).await.unwrap_err();
    assert_eq!(e2.message, e.message);
    assert!(
        b.facts()["server_error"]
            .as_str()
            .unwrap()
            .contains("exited")
    );
}

#[tokio::test]
async fn dropping_the_backend_stops_the_server() {
    let Some((bin, gguf)) = prerequisites("dropping_the_backend_stops_the_server") else {
        return;
    };
    let b = managed(&bin, &gguf, json!({"stream": false}));
    assert_eq!(
        b.generate(&chat("hi", 1)).await.unwrap().choices[0].text,
        ANSWER
    );
    let pid = b.facts()["server_pid"].as_i64().unwrap();
    assert!(alive(pid));
    // No shutdown(): a run that failed or panicked only drops its backends.
    tokio::task::spawn_blocking(move || drop(b)).await.unwrap();
    assert!(!alive(pid), "llama-server {pid} survived the backend");
}
