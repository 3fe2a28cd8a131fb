//! Harness overhead against a loopback server: N requests through the backend compared with
//! the server's own emit schedule (wall / ideal). The server writes each token at a scripted
//! instant and records when it actually did; "ideal" is the time the server itself spent on
//! the streams (from reading each request to writing its last byte), so the ratio holds
//! everything llmtest adds: building the request, HTTP, SSE parsing, assembling choices and
//! timings, the concurrency limiter.
//!
//!     cargo bench -p llmtest-openai --bench overhead [-- N]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use llmtest_backend::{Backend, BackendContext};
use support::{Reply, TestServer, chat, model};

/// Streams `n` requests with `concurrency` in flight; returns (wall, ideal) in seconds.
async fn run(
    b: Arc<dyn Backend>,
    s: &TestServer,
    n: usize,
    concurrency: usize,
    tokens: usize,
) -> (f64, f64) {
    let before = s.count();
    let t = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (b, next) = (b.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let r = b.generate(&chat("bench", 1)).await.expect("bench request");
                assert_eq!(r.timings.gaps_ms.len(), tokens - 1);
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let wall = t.elapsed().as_secs_f64();
    let hits = s.hits();
    let busy: f64 = hits[before..]
        .iter()
        .map(|h| {
            h.writes
                .last()
                .unwrap()
                .duration_since(h.received)
                .as_secs_f64()
        })
        .sum();
    (wall, busy / concurrency as f64)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(400);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("harness overhead against a loopback server ({n} requests per row)");
        println!(
            "{:<34} {:>9} {:>9} {:>11} {:>13}",
            "scenario", "wall s", "ideal s", "wall/ideal", "per request"
        );
        // (name, first-token delay, tokens, gap between tokens, concurrency)
        let scenarios: [(&str, u64, usize, u64, usize); 4] = [
            ("stream 16 tok, 1 ms gaps, seq", 5, 16, 1, 1),
            ("stream 16 tok, 1 ms gaps, conc 8", 5, 16, 1, 8),
            ("stream 64 tok, 0 ms gaps, seq", 0, 64, 0, 1),
            ("stream 64 tok, 0 ms gaps, conc 8", 0, 64, 0, 8),
        ];
        for (name, first, tokens, gap, conc) in scenarios {
            let script: Vec<(Duration, String)> = (0..tokens)
                .map(|i| {
                    (
                        Duration::from_millis(if i == 0 { first } else { gap }),
                        format!("tok{i} "),
                    )
                })
                .collect();
            let s = TestServer::start_isolated(move |_, _| {
                Reply::chat_stream(
                    &script
                        .iter()
                        .map(|(d, t)| (*d, t.as_str()))
                        .collect::<Vec<_>>(),
                )
            });
            let b = llmtest_openai::factory()
                .create(
                    &model(
                        "bench",
                        conc,
                        json!({"base_url": s.base_url(), "adaptive_concurrency": false}),
                    ),
                    &BackendContext::default(),
                )
                .unwrap();
            // Warm-up: connections opened, allocator and caches warm.
            run(b.clone(), &s, conc * 4, conc, tokens).await;
            let (wall, ideal) = run(b, &s, n, conc, tokens).await;
            let extra_us = (wall - ideal) / n as f64 * conc as f64 * 1e6;
            println!(
                "{name:<34} {wall:>9.3} {ideal:>9.3} {:>11.3} {:>10.0} µs",
                wall / ideal,
                extra_us
            );
        }
        llama_server(n).await;
    });
}

/// Throughput against a real llama-server on the tiny model, when both are here (no ideal:
/// the server's own time per request is not reported to us).
async fn llama_server(n: usize) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = std::env::var_os("LLMTEST_LLAMA_SERVER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("ci/cache/llama-server/bin/llama-server"));
    let gguf = root.join("fixtures/models/tiny-qwen2/model.gguf");
    if !bin.is_file() || !gguf.is_file() {
        println!("llama-server row skipped: no binary or model");
        return;
    }
    for stream in [true, false] {
        let opts = json!({
            "provider": "llamacpp",
            "stream": stream,
            "server": {"command": [bin, "-m", gguf, "--host", "{host}", "--port", "{port}", "-c", "2048", "-np", "4", "--jinja", "--no-webui"]},
        });
        let b = llmtest_openai::factory()
            .create(&model("tiny", 4, opts), &BackendContext::default())
            .unwrap();
        b.generate(&chat("warm up", 1)).await.unwrap();
        let t = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (b, next) = (b.clone(), next.clone());
            workers.push(tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    b.generate(&chat("Who are you?", 1))
                        .await
                        .expect("llama-server request");
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        let wall = t.elapsed().as_secs_f64();
        println!(
            "llama-server tiny model, conc 4, {}: {n} requests in {wall:.3} s = {:.0} requests/s",
            if stream { "streamed" } else { "not streamed" },
            n as f64 / wall
        );
        b.shutdown().await;
    }
}
