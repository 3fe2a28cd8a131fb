//! The `llmtest` binary end to end on small projects: exit codes, the JSON results schema,
//! reports, the harness protocol (`--list`, `--exact`, filters, nextest's calls), snapshots
//! and their failure under CI.

use std::path::Path;
use std::process::{Command, Output};

const CONFIG: &str = r#"version: 1
default_profile: local
models:
  echo:
    backend: exec
    command: [sh, -c, cat]
  broken:
    backend: exec
    command: [sh, -c, "echo server exploded >&2; exit 1"]
  answers:
    backend: outputs
    path: answers.jsonl
profiles:
  local: {models: [echo, answers]}
  infra: {models: [broken]}
  known: {models: [answers], allow_known_failures: true}
"#;

const SUITE: &str = r#"version: 1
suite: revenue
mode: completion
cases:
  - id: total
    prompt: "58,159,881千元"
    expect:
      - {type: contains, value: "58,159,881"}
  - id: not-2023
    prompt: "收入 58,159,881"
    expect:
      - {type: not-contains, value: "53,529,941"}
      - {type: regex, value: "58,?159,?881"}
"#;

fn project(answers: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("llmtest.yaml"), CONFIG).unwrap();
    std::fs::create_dir_all(dir.path().join("suites")).unwrap();
    std::fs::write(dir.path().join("suites/revenue.yaml"), SUITE).unwrap();
    std::fs::write(dir.path().join("answers.jsonl"), answers).unwrap();
    dir
}

const RIGHT: &str = "{\"case\": \"total\", \"output\": \"58,159,881千元\"}\n{\"case\": \"not-2023\", \"output\": \"58159881\"}\n";
const WRONG: &str = "{\"case\": \"total\", \"output\": \"53,529,941千元\"}\n{\"case\": \"not-2023\", \"output\": \"58159881\"}\n";

fn llmtest(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llmtest"));
    c.current_dir(dir)
        .args(args)
        .env_remove("CI")
        .env_remove("INSTA_UPDATE")
        .env_remove("LLMTEST_PROFILE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn exit_codes_follow_the_documented_contract() {
    let ok = project(RIGHT);
    let o = llmtest(ok.path(), &["run"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("| **echo** | echo | ✅ 2/2 100% (34–100) |"),
        "{}",
        text(&o)
    );

    let wrong = project(WRONG);
    let o = llmtest(wrong.path(), &["run"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    let o = llmtest(wrong.path(), &["run", "--profile", "infra"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    std::fs::write(
        wrong.path().join("suites/bad.yaml"),
        "version: 1\nsuite: bad\ncases:\n  - {id: a, promt: x}\n",
    )
    .unwrap();
    let o = llmtest(wrong.path(), &["run"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("suites/bad.yaml:4:"), "{}", text(&o));
    let o = llmtest(wrong.path(), &["validate"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = llmtest(wrong.path(), &["run", "--bogus-flag"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn json_results_follow_the_schema_and_keep_infra_apart_from_wrong() {
    let dir = project(WRONG);
    let o = llmtest(
        dir.path(),
        &[
            "run", "--format", "json", "--model", "answers", "--model", "broken",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    let find = |m: &str, c: &str| {
        cases
            .iter()
            .find(|x| x["model"] == m && x["case"] == c)
            .unwrap()
            .clone()
    };
    let wrong = find("answers", "total");
    assert_eq!(wrong["outcome"], "fail");
    assert_eq!(wrong["samples"][0]["answer"], "53,529,941千元");
    assert_eq!(wrong["samples"][0]["assertions"][0]["type"], "contains");
    assert_eq!(wrong["samples"][0]["assertions"][0]["pass"], false);
    let infra = find("broken", "total");
    assert_eq!(infra["outcome"], "infra_error");
    assert_eq!(infra["error"]["kind"], "process");
    assert!(
        infra["samples"].as_array().unwrap().is_empty(),
        "no answer may be graded on an infra error"
    );
    assert_eq!(v["summary"]["by_outcome"]["infra_error"], 2);
    // The results file is written as well.
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/llmtest/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file["cases"], v["cases"]);
}

#[test]
fn junit_markdown_and_html_reports() {
    let dir = project(WRONG);
    for (fmt, needle) in [
        ("junit", "<testsuite name=\"revenue@answers\""),
        ("md", "| total | ❌ | ✅ |"),
        ("html", "<table class=heat id=heatmap>"),
    ] {
        let out = dir.path().join(format!("report.{fmt}"));
        let o = llmtest(
            dir.path(),
            &["run", "--format", fmt, "--output", out.to_str().unwrap()],
            &[],
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let body = std::fs::read_to_string(&out).unwrap();
        assert!(body.contains(needle), "{fmt}: {body}");
    }
}

#[test]
fn harness_lists_sorted_names_and_honours_filters() {
    let dir = project(RIGHT);
    let o = llmtest(dir.path(), &["test", "--", "--list"], &[]);
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    let names: Vec<&str> = list.lines().map(|l| l.trim_end_matches(": test")).collect();
    assert_eq!(
        names,
        [
            "revenue::answers::snapshot",
            "revenue::echo::snapshot",
            "revenue::not-2023::answers",
            "revenue::not-2023::echo",
            "revenue::total::answers",
            "revenue::total::echo",
        ]
    );
    // nextest: `--list --format terse`, then one process per test with `--exact NAME`.
    let o = llmtest(
        dir.path(),
        &["test", "--", "--list", "--format", "terse"],
        &[],
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("revenue::total::echo: test"));
    let o = llmtest(
        dir.path(),
        &[
            "test",
            "--",
            "--exact",
            "revenue::total::echo",
            "--nocapture",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        // only the named case is built in this process: the other trials listed are fewer
        text(&o).contains("1 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out"),
        "{}",
        text(&o)
    );
    let o = llmtest(
        dir.path(),
        &["test", "--", "total", "--skip", "answers"],
        &[],
    );
    assert!(text(&o).contains("1 passed"), "{}", text(&o));
}

#[test]
fn failed_trial_shows_answer_expected_and_found() {
    let dir = project(WRONG);
    let o = llmtest(dir.path(), &["test", "--", "revenue::total::answers"], &[]);
    assert_eq!(o.status.code(), Some(101), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("answer: \"53,529,941千元\""), "{t}");
    assert!(
        t.contains("✗ contains: expected contains \"58,159,881\""),
        "{t}"
    );
    // One trial per process, as nextest runs it: only that case is built, same verdict.
    let o = llmtest(
        dir.path(),
        &["test", "--", "--exact", "revenue::total::answers"],
        &[],
    );
    assert_eq!(o.status.code(), Some(101), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("1 failed") && t.contains("answer: \"53,529,941千元\""),
        "{t}"
    );
    let o = llmtest(
        dir.path(),
        &["test", "--", "--exact", "revenue::not-2023::answers"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("1 passed"), "{}", text(&o));
}

#[test]
fn infra_errors_are_reported_as_such() {
    let dir = project(RIGHT);
    let o = llmtest(
        dir.path(),
        &["test", "--", "revenue::total::"],
        &[("LLMTEST_PROFILE", "infra")],
    );
    let t = text(&o);
    assert!(
        t.contains("infrastructure error, not a wrong answer: process:"),
        "{t}"
    );
    assert!(t.contains("server exploded"), "{t}");
}

#[test]
fn snapshots_are_created_then_guard_against_change_under_ci() {
    let dir = project(RIGHT);
    // First run outside CI: insta writes the new snapshots.
    let o = llmtest(dir.path(), &["test"], &[("INSTA_UPDATE", "always")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let snap = std::fs::read_to_string(dir.path().join("snapshots/revenue@answers.snap")).unwrap();
    assert!(
        snap.contains("passed: 2/2") && snap.contains("outcome: pass"),
        "{snap}"
    );
    assert!(
        !snap.contains("58,159,881千元"),
        "raw answers stay out of default snapshots: {snap}"
    );
    // Unchanged results pass under CI.
    let o = llmtest(dir.path(), &["test"], &[("CI", "true")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A regression: the answers change; the snapshot trial fails under CI and writes nothing.
    std::fs::write(dir.path().join("answers.jsonl"), WRONG).unwrap();
    let o = llmtest(dir.path(), &["test", "--", "snapshot"], &[("CI", "true")]);
    assert_eq!(o.status.code(), Some(101), "{}", text(&o));
    assert!(
        text(&o).contains("revenue::answers::snapshot"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("cargo insta review"), "{}", text(&o));
}

#[test]
fn known_failures_recorded_in_the_snapshot_pass_their_case_trial() {
    let dir = project(WRONG);
    // One thread runs the snapshot trial (sorted first) before the case trials: what it
    // writes must not make this run's new failure look recorded.
    let o = llmtest(
        dir.path(),
        &["test", "--", "--test-threads", "1"],
        &[("INSTA_UPDATE", "always"), ("LLMTEST_PROFILE", "known")],
    );
    // Without a snapshot the failure is new: the case trial fails (the snapshot is written).
    assert_eq!(o.status.code(), Some(101), "{}", text(&o));
    let o = llmtest(
        dir.path(),
        &["test"],
        &[("CI", "true"), ("LLMTEST_PROFILE", "known")],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "a recorded failure is known: {}",
        text(&o)
    );
    for name in ["revenue::total::answers", "revenue::answers::snapshot"] {
        let o = llmtest(
            dir.path(),
            &["test", "--", "--exact", name],
            &[("CI", "true"), ("LLMTEST_PROFILE", "known")],
        );
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        assert!(text(&o).contains("1 passed"), "{}", text(&o));
    }
    // Fixing the answer is a change too: the snapshot trial says so.
    std::fs::write(dir.path().join("answers.jsonl"), RIGHT).unwrap();
    let o = llmtest(
        dir.path(),
        &["test"],
        &[("CI", "true"), ("LLMTEST_PROFILE", "known")],
    );
    assert_eq!(o.status.code(), Some(101), "{}", text(&o));
}

#[test]
fn schema_check_detects_staleness() {
    let dir = project(RIGHT);
    let o = llmtest(dir.path(), &["schema", "--check"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let o = llmtest(dir.path(), &["schema", "--write"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let o = llmtest(dir.path(), &["schema", "--check"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
