//! The repo's own suites run live on the tiny model through both local backends — ONNX
//! Runtime in-process and a llama-server that llmtest starts and stops — from the CLI and
//! through the `cargo test` harness, with latency figures in the results.
//!
//! Needs the ONNX Runtime library (`bash ci/setup.sh`) and llama-server
//! (`bash ci/setup.sh --with-llama-server`); skips without them unless
//! `LLMTEST_REQUIRE_EXTERNAL=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn prerequisites() -> bool {
    let root = repo();
    let server = std::env::var_os("LLMTEST_LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("ci/cache/llama-server/bin/llama-server"));
    let ort = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(".venv") && e.path().join("lib").exists()
        })
        || std::env::var_os("ORT_DYLIB_PATH").is_some();
    let missing: Vec<&str> = [
        (!server.exists()).then_some("llama-server"),
        (!ort).then_some("the ONNX Runtime library"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "missing {} (run `bash ci/setup.sh --with-llama-server`)",
        missing.join(" and ")
    );
    if std::env::var("LLMTEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("LLMTEST_REQUIRE_EXTERNAL=1 but {msg}");
    }
    eprintln!("skipped: {msg}");
    false
}

#[test]
fn seed_suites_run_live_on_both_local_backends() {
    if !prerequisites() {
        return;
    }
    let out_dir = tempfile::tempdir().unwrap();
    let report = out_dir.path().join("results.json");
    let o = Command::new(env!("CARGO_BIN_EXE_llmtest"))
        .current_dir(repo())
        .args([
            "run",
            "--profile",
            "live-local",
            "--format",
            "json",
            "--output",
        ])
        .arg(&report)
        .args(["suites/table-qa", "suites/math"])
        .env_remove("LLMTEST_PROFILE")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    // The tiny model answers every question wrongly: exit 1, and no infrastructure error.
    assert_eq!(o.status.code(), Some(1), "{log}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2 * 19, "{log}");
    for c in cases {
        assert_eq!(c["outcome"], "fail", "{c}");
        assert_eq!(c["samples"][0]["answer"], "I am a tiny test model.", "{c}");
        let t = &c["timings"];
        assert!(
            t["replayed"].is_null(),
            "live timings are not marked replayed: {t}"
        );
        assert!(
            t["ttft_ms"].as_f64().is_some_and(|x| x > 0.0),
            "time to first token measured: {t}"
        );
        assert!(t["tokens_per_s"].as_f64().is_some_and(|x| x > 0.0), "{t}");
    }
    let models = v["models"].as_array().unwrap();
    let server = models
        .iter()
        .find(|m| m["name"] == "tiny-qwen2-llamacpp")
        .unwrap();
    assert!(
        server["facts"]["server_time_to_ready_s"].as_f64().is_some(),
        "{server}"
    );
    assert!(
        server["facts"]["server_peak_rss_mib"].as_f64().is_some(),
        "{server}"
    );
    let onnx = models
        .iter()
        .find(|m| m["name"] == "tiny-qwen2-onnx")
        .unwrap();
    assert_eq!(onnx["facts"]["execution_provider"], "cpu", "{onnx}");
    let cell = &v["summary"]["matrix"]["tiny-qwen2-llamacpp"]["seed-math"];
    assert!(
        cell["ttft_ms_p50"].as_f64().is_some(),
        "latency in the matrix: {cell}"
    );
}

#[test]
fn harness_runs_live_trials_on_both_local_backends() {
    if !prerequisites() {
        return;
    }
    // What `LLMTEST_PROFILE=live-local cargo test --test evals -- seed-math::remainder` does.
    let o = Command::new(env!("CARGO_BIN_EXE_llmtest"))
        .current_dir(repo())
        .args(["test", "--", "seed-math::remainder::"])
        .env("LLMTEST_PROFILE", "live-local")
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        o.status.code(),
        Some(101),
        "the tiny model's wrong answers fail their trials: {out}"
    );
    assert!(out.contains("2 failed"), "{out}");
    assert!(out.contains("answer: \"I am a tiny test model.\""), "{out}");
    assert!(out.contains("✗ math: expected 142"), "{out}");
    assert!(!out.contains("infrastructure error"), "{out}");
}
