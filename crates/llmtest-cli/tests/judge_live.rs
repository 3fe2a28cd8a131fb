//! Model-graded and structured-output assertions against a real llama-server that llmtest
//! starts and stops: the tiny random model's output is constrained to the verdict's JSON
//! schema (grammar-constrained decoding), so the judge's verdict parses; `response_format`
//! constrains a candidate's answer the same way; a pre-filled `<tool_call>` with
//! `tool_choice: required` makes the server constrain the reply to its tool-call grammar and
//! return OpenAI `tool_calls`.
//!
//! Needs llama-server (`bash ci/setup.sh --with-llama-server`) and Python (the leetcode
//! case's code runs); skips without them unless `LLMTEST_REQUIRE_EXTERNAL=1`. The replay of
//! the recorded tool calls needs neither and always runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn llama_server() -> bool {
    let bin = std::env::var_os("LLMTEST_LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("ci/cache/llama-server/bin/llama-server"));
    if bin.exists() {
        return true;
    }
    let msg = "missing llama-server (run `bash ci/setup.sh --with-llama-server`)";
    if std::env::var("LLMTEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("LLMTEST_REQUIRE_EXTERNAL=1 but {msg}");
    }
    eprintln!("skipped: {msg}");
    false
}

fn run(args: &[&str]) -> (Option<i32>, String, Value) {
    run_on("live-local", args)
}

fn run_on(profile: &str, args: &[&str]) -> (Option<i32>, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("results.json");
    let o = Command::new(env!("CARGO_BIN_EXE_llmtest"))
        .current_dir(repo())
        .args(["run", "--profile", profile, "--format", "json", "--output"])
        .arg(&report)
        .args(args)
        .env_remove("LLMTEST_PROFILE")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    let v = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (o.status.code(), log, v)
}

#[test]
fn a_live_judge_returns_a_schema_valid_verdict() {
    if !llama_server() {
        return;
    }
    let (code, log, v) = run(&[
        "--model",
        "leetcode-reference",
        "--filter",
        "two-sum-unique-pairs",
        "suites/code/leetcode.yaml",
    ]);
    let cases = v["cases"].as_array().unwrap_or_else(|| panic!("{log}"));
    assert_eq!(cases.len(), 1, "{log}");
    let c = &cases[0];
    // The reference code passes its tests, so the case passes whatever the review says; the
    // review is a real verdict (not a judge error) read from the judge's JSON.
    assert_eq!(c["outcome"], "pass", "{c}\n{log}");
    assert_eq!(code, Some(0), "{log}");
    let review = c["samples"][0]["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "rubric")
        .unwrap()
        .clone();
    assert!(review["outcome"].is_null(), "{review}");
    let d = &review["detail"];
    assert_eq!(d["judge"], "tiny-qwen2-llamacpp-tools", "{review}");
    let s = d["verdicts"][0]["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&s), "{review}");
    let score = c["score"].as_f64().unwrap();
    assert!(
        (score - (0.6 + 0.4 * s)).abs() < 1e-9,
        "0.6 × tests + 0.4 × review: {c}"
    );
    let j = &c["judge"];
    assert_eq!(j["calls"], 1, "{c}");
    assert!(
        j["completion_tokens"].as_u64().is_some_and(|t| t > 0),
        "{j}"
    );
    assert!(
        j["total_ms"].as_f64().is_some_and(|t| t > 0.0),
        "live latency: {j}"
    );
    assert!(j["replayed"].is_null(), "{j}");
}

#[test]
fn response_format_constrains_a_live_answer_to_the_schema() {
    if !llama_server() {
        return;
    }
    let (_, log, v) = run(&[
        "--model",
        "tiny-qwen2-llamacpp-tools",
        "--filter",
        "person-json-schema",
        "suites/structured/json-output.yaml",
    ]);
    let cases = v["cases"].as_array().unwrap_or_else(|| panic!("{log}"));
    assert_eq!(cases.len(), 1, "{log}");
    // A model that only knows one sentence answers with schema-valid JSON: the server
    // constrained its decoding.
    let c = &cases[0];
    assert_eq!(c["outcome"], "pass", "{c}\n{log}");
    let answer: Value = serde_json::from_str(c["samples"][0]["answer"].as_str().unwrap()).unwrap();
    assert!(
        answer["name"].is_string() && answer["age"].is_u64(),
        "{answer}"
    );
}

/// The forced call of `suites/structured/tool-calls-forced.yaml` on the tools server:
/// checks what the server returned and how `tool-call` graded it, live or replayed.
fn check_forced_call(profile: &str) {
    let (_, log, v) = run_on(
        profile,
        &[
            "--model",
            "tiny-qwen2-llamacpp-tools",
            "--filter",
            "prefilled-call-is-well-formed",
            "suites/structured/tool-calls-forced.yaml",
        ],
    );
    let cases = v["cases"].as_array().unwrap_or_else(|| panic!("{log}"));
    assert_eq!(cases.len(), 1, "{log}");
    let c = &cases[0];
    assert_eq!(c["outcome"], "pass", "{c}\n{log}");
    let s = &c["samples"][0];
    // The server parsed the call itself: OpenAI `tool_calls`, no Hermes text left over.
    assert_eq!(s["finish_reason"], "tool_calls", "{s}");
    assert_eq!(s["output"], "", "{s}");
    let calls = s["assertions"][0]["detail"].as_array().unwrap();
    assert!(!calls.is_empty(), "{s}");
    for call in calls {
        // A declared function, arguments its grammar allowed: the city within maxLength.
        assert_eq!(call["name"], "get_weather", "{call}");
        let city = call["arguments"]["city"].as_str().unwrap();
        assert!(!city.is_empty() && city.chars().count() <= 24, "{call}");
    }
}

#[test]
fn a_prefilled_tool_call_comes_back_from_the_server_as_tool_calls() {
    if !llama_server() {
        return;
    }
    check_forced_call("live-local");
}

#[test]
fn the_recorded_forced_tool_call_replays() {
    check_forced_call("ci");
}
