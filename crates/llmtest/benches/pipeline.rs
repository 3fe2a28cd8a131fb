//! The whole pipeline against a loopback OpenAI-compatible server that answers after a fixed
//! latency: N cases loaded from a suite (parse → validate → render), requested through the
//! HTTP backend, graded, and their results serialized — beside a bare reqwest client sending
//! the same N requests at the same concurrency to the same server (no parsing, no grading).
//! That bare client is the real limit; the goal is llmtest within 5% of it.
//!
//!     cargo bench -p llmtest --bench pipeline [-- --quick]
//!
//! Prints wall / ideal at N = 2,000 and several concurrencies, llmtest / bare, the client
//! time per case at zero latency, start-up (load + plan + backends) of a 10,000-case suite,
//! and peak memory (VmHWM, measured in a child process each) at 10,000 and 100,000 cases.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use llmtest::{Engine, Llmtest, Plan, PlanOptions};

const ANSWER: &[u8] = br#"{"id":"x","object":"chat.completion","model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"The answer is 42."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5}}"#;

/// An HTTP/1.1 keep-alive server answering every request with [`ANSWER`] after `latency`.
async fn serve(listener: tokio::net::TcpListener, latency: Duration) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let _ = sock.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            let mut chunk = [0u8; 8192];
            loop {
                // One request: headers, then Content-Length bytes of body.
                let (head_end, len) = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                while buf.len() < head_end + len {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..head_end + len);
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    ANSWER.len()
                );
                if sock.write_all(head.as_bytes()).await.is_err()
                    || sock.write_all(ANSWER).await.is_err()
                {
                    return;
                }
            }
        });
    }
}

/// A project of `n` cases (one `cases_from` file) on a model at `port`.
fn project(dir: &Path, n: usize, port: u16, concurrency: usize) {
    std::fs::write(
        dir.join("llmtest.yaml"),
        format!(
            "version: 1\nmodels:\n  mock: {{backend: openai, base_url: \"http://127.0.0.1:{port}/v1\", model: mock, stream: false, max_concurrency: {concurrency}, max_retries: 0}}\nprofiles:\n  bench: {{mode: live, models: [mock]}}\ndefault_profile: bench\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("suites/data")).unwrap();
    let rows: String = (0..n)
        .map(|i| format!("{{\"q\": \"What is {i} plus 42 minus {i}?\", \"a\": 42}}\n"))
        .collect();
    std::fs::write(dir.join("suites/data/rows.jsonl"), rows).unwrap();
    std::fs::write(
        dir.join("suites/bench.yaml"),
        "version: 1\nsuite: bench\nsnapshot: off\ncases_from:\n  - path: data/rows.jsonl\n    prompt: \"{{ q }}\"\n    expect: [{type: contains, value: \"{{ a }}\"}]\n",
    )
    .unwrap();
}

static KEEP: std::sync::Mutex<Vec<Arc<Engine>>> = std::sync::Mutex::new(Vec::new());

/// parse → render → request → grade → results, as `llmtest run` does; returns wall seconds
/// of the whole and of the start-up (load, plan, backends).
fn pipeline(dir: &Path) -> (f64, f64, usize) {
    let t = Instant::now();
    let lt = Llmtest::new().root(dir);
    let registry = Arc::new(lt.grader_registry(dir));
    let plan = Plan::load(dir, &registry, &PlanOptions::default()).expect("plan");
    let engine = Arc::new(
        Engine::new(&plan, &["mock".to_string()], &lt.backend_factories()).expect("engine"),
    );
    let startup = t.elapsed().as_secs_f64();
    let results = engine.run_all(&plan.work);
    let passed = results
        .iter()
        .filter(|r| r.outcome == llmtest::grade::Outcome::Pass)
        .count();
    let json = serde_json::to_vec(&results).unwrap();
    std::hint::black_box(json);
    engine.shutdown();
    let wall = t.elapsed().as_secs_f64();
    // Tasks of the engine's runtime still hold it; it must not be dropped from one of them.
    KEEP.lock().unwrap().push(engine);
    (wall, startup, passed)
}

/// The same requests from a bare reqwest client at the same concurrency; wall seconds.
fn bare(rt: &tokio::runtime::Runtime, port: u16, n: usize, concurrency: usize) -> f64 {
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
        let t = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, url, next) = (client.clone(), url.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let body = format!(
                        "{{\"model\":\"mock\",\"messages\":[{{\"role\":\"user\",\"content\":\"What is {i} plus 42 minus {i}?\"}}]}}"
                    );
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    std::hint::black_box(r.bytes().await.unwrap());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        t.elapsed().as_secs_f64()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .unwrap();
    let start_server = |latency: Duration| {
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            rt.spawn(serve(l, latency));
            port
        })
    };
    // A child that measures its own peak memory for N cases: `pipeline --memory N`.
    if let Some(i) = args.iter().position(|a| a == "--memory") {
        let n: usize = args[i + 1].parse().unwrap();
        let port = start_server(Duration::ZERO);
        let dir = tempfile::tempdir().unwrap();
        project(dir.path(), n, port, 32);
        let (_, _, passed) = pipeline(dir.path());
        assert_eq!(passed, n);
        println!("{}", vm_hwm_kib());
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 3 };
    let n = 2000;
    let latency = Duration::from_millis(10);
    let port = start_server(latency);
    println!(
        "pipeline: {n} cases, server latency {} ms, median of {rounds}",
        latency.as_millis()
    );
    println!(
        "| concurrency | ideal s | llmtest s | llmtest / ideal | bare reqwest s | bare / ideal | llmtest / bare |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for c in [1usize, 8, 32] {
        let n = if c == 1 { n / 10 } else { n };
        let ideal = n as f64 * latency.as_secs_f64() / c as f64;
        let dir = tempfile::tempdir().unwrap();
        project(dir.path(), n, port, c);
        let mut lw = Vec::new();
        let mut bw = Vec::new();
        for _ in 0..rounds {
            let (w, _, passed) = pipeline(dir.path());
            assert_eq!(passed, n, "every case passes: the answers were graded");
            lw.push(w);
            bw.push(bare(&rt, port, n, c));
        }
        let (l, b) = (median(lw), median(bw));
        println!(
            "| {c}{} | {ideal:.3} | {l:.3} | {:.3} | {b:.3} | {:.3} | {:.3} |",
            if c == 1 { " (200 cases)" } else { "" },
            l / ideal,
            b / ideal,
            l / b
        );
    }
    // Zero latency: what each case costs the client.
    let port0 = start_server(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), n, port0, 8);
    let mut lw = Vec::new();
    let mut bw = Vec::new();
    for _ in 0..rounds {
        lw.push(pipeline(dir.path()).0);
        bw.push(bare(&rt, port0, n, 8));
    }
    let (l, b) = (median(lw), median(bw));
    println!(
        "\nzero latency, concurrency 8: llmtest {:.3} ms per case, bare reqwest {:.3} ms per case, llmtest adds {:.3} ms per case",
        l / n as f64 * 1e3,
        b / n as f64 * 1e3,
        (l - b) / n as f64 * 1e3
    );
    // Start-up of a 10,000-case suite (load, validate, render, plan, backends; no request).
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 10_000, port0, 8);
    let mut s = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let lt = Llmtest::new().root(dir.path());
        let registry = Arc::new(lt.grader_registry(dir.path()));
        let plan = Plan::load(dir.path(), &registry, &PlanOptions::default()).unwrap();
        let e = Engine::new(&plan, &["mock".to_string()], &lt.backend_factories()).unwrap();
        s.push(t.elapsed().as_secs_f64());
        assert_eq!(plan.work.len(), 10_000);
        e.shutdown();
        KEEP.lock().unwrap().push(Arc::new(e));
    }
    println!("start-up of a 10,000-case suite: {:.1} ms", median(s) * 1e3);
    // Peak memory, each size in a fresh process.
    let me = std::env::current_exe().unwrap();
    let mut kib = Vec::new();
    let sizes: &[usize] = if quick {
        &[1_000, 10_000]
    } else {
        &[10_000, 100_000]
    };
    for &size in sizes {
        let out = std::process::Command::new(&me)
            .args(["--memory", &size.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let k: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        kib.push(k);
        println!("peak memory at {size} cases: {:.1} MiB", k as f64 / 1024.0);
    }
    let per_case = (kib[1] - kib[0]) as f64 * 1024.0 / (sizes[1] - sizes[0]) as f64;
    println!(
        "growth: {:.2} KB per case (results kept in memory, answers included)",
        per_case / 1000.0
    );
}
