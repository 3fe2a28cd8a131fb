//! Decode speed of llmtest-onnx next to onnxruntime's Python API driving the same graph with
//! the same greedy loop (`tokens_per_s.py` beside this file), as a ratio in one run.
//!
//! ```sh
//! cargo bench -p llmtest-onnx --bench tokens_per_s -- --tokens 256 --threads 1 --runs 5
//! ```
//!
//! Python is `$LLMTEST_PYTHON`, else `.venv/bin/python`, else `.venv-onnx/bin/python` (it
//! needs `numpy` and `onnxruntime`). Both sides generate the same number of tokens greedily
//! with end-of-sequence ignored, on the CPU with the same intra-op thread count, and must
//! produce the same token ids.

use std::path::{Path, PathBuf};
use std::process::Command;

use llmtest_onnx::{LoadOptions, OnnxModel, Sampling};
use llmtest_spec::{Message, Role};
use serde_json::{Map, Value};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn python(root: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::env::var("LLMTEST_PYTHON") {
        return Some(PathBuf::from(p));
    }
    [".venv/bin/python", ".venv-onnx/bin/python"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.is_file())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (tokens, threads, runs) = (arg("--tokens", 256), arg("--threads", 1), arg("--runs", 5));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root");
    let dir = root.join("fixtures/models/tiny-qwen2");
    let opts = LoadOptions {
        root: root.clone(),
        threads: Some(threads),
        ..LoadOptions::default()
    };
    let model = match OnnxModel::load(&dir, &opts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let msgs = [Message {
        role: Role::User,
        content: "京东健康2024年收入是多少？".into(),
    }];
    let ids = model
        .encode(&model.render_chat(&msgs, None, &Map::new()).unwrap())
        .unwrap();
    let cfg = Sampling {
        ignore_eos: true,
        ..Sampling::greedy(tokens as u32)
    };

    model
        .generate(
            std::slice::from_ref(&ids),
            &Sampling {
                max_tokens: 16,
                ..cfg.clone()
            },
        )
        .unwrap(); // warm-up
    let py = python(&root);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/tokens_per_s.py");
    let id_list = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let sides: [(&str, Option<&str>); 2] = [
        ("onnxruntime Python, session.run", None),
        ("onnxruntime Python, io_binding", Some("--io-binding")),
    ];

    // Rounds interleave the three loops so that a change in machine load hits all of them.
    let mut rust = Side::default();
    let mut pys: Vec<Side> = sides.iter().map(|_| Side::default()).collect();
    for _ in 0..runs {
        let g = model.generate(std::slice::from_ref(&ids), &cfg).unwrap();
        let last = g
            .step_times
            .last()
            .expect("more than one token")
            .as_secs_f64();
        rust.rates.push(g.step_times.len() as f64 / last);
        rust.ttfts.push(g.ttft.as_secs_f64() * 1000.0);
        let rust_tokens = &g.sequences[0].tokens;
        let Some(py) = &py else { continue };
        for ((label, extra), side) in sides.iter().zip(&mut pys) {
            let mut cmd = Command::new(py);
            cmd.arg(&script).arg("--model").arg(&dir);
            cmd.args([
                "--ids",
                &id_list,
                "--tokens",
                &tokens.to_string(),
                "--threads",
                &threads.to_string(),
                "--runs",
                "1",
            ]);
            cmd.args(extra.iter());
            let out = cmd.output().expect("running python");
            if !out.status.success() {
                side.failed = Some(format!(
                    "{label}: failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                ));
                continue;
            }
            let v: Value = serde_json::from_slice(&out.stdout).expect("python prints json");
            side.rates.push(v["tokens_per_s"].as_f64().unwrap());
            side.ttfts.push(v["ttft_ms"].as_f64().unwrap());
            side.run_us.extend(v["run_us_per_token"].as_f64());
            side.version = v["onnxruntime"].as_str().unwrap_or("?").to_owned();
            let got: Vec<u32> = v["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(&got, rust_tokens, "{label} generated different tokens");
        }
    }
    let r = median(rust.rates.clone());
    println!(
        "model: fixtures/models/tiny-qwen2, prompt {} tokens, {tokens} new tokens, {threads} thread(s), median of {runs} interleaved rounds, CPU",
        ids.len()
    );
    println!(
        "llmtest-onnx (Rust, IoBinding)     {r:>9.1} tokens/s   ttft {:.2} ms   {:.1} µs/token",
        median(rust.ttfts),
        1e6 / r
    );
    if py.is_none() {
        println!(
            "python side skipped: no .venv/bin/python or .venv-onnx/bin/python (set LLMTEST_PYTHON)"
        );
    }
    for ((label, _), side) in sides.iter().zip(pys) {
        if let Some(f) = side.failed {
            println!("{f}");
            continue;
        }
        if side.rates.is_empty() {
            continue;
        }
        let p = median(side.rates.clone());
        let inside = if side.run_us.is_empty() {
            String::new()
        } else {
            format!(" ({:.1} inside session.run)", median(side.run_us))
        };
        println!(
            "{label:<34} {p:>9.1} tokens/s   ttft {:.2} ms   {:.1} µs/token{inside}   [onnxruntime {}, same tokens]",
            median(side.ttfts),
            1e6 / p,
            side.version
        );
        println!("  ratio rust / python: {:.2}x", r / p);
    }
}

#[derive(Default)]
struct Side {
    rates: Vec<f64>,
    ttfts: Vec<f64>,
    run_us: Vec<f64>,
    version: String,
    failed: Option<String>,
}
