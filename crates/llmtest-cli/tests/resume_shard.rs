//! Runs that survive a kill and runs spread over shards, for real: the `llmtest` binary
//! against a slow OpenAI-compatible server on 127.0.0.1 (`support/slow_openai.py`, which
//! logs every prompt it is asked), SIGKILLed and SIGINTed midway, then `--resume`d; and
//! three `--shard K/3` runs put back together by `llmtest merge`.
//!
//! The server tests need python3; they skip without it unless `LLMTEST_REQUIRE_EXTERNAL=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const CASES: usize = 12;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/slow_openai.py")
}

fn python() -> Option<&'static str> {
    let ok = Command::new("python3")
        .arg("-c")
        .arg("import http.server")
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some("python3");
    }
    if std::env::var("LLMTEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("LLMTEST_REQUIRE_EXTERNAL=1 but python3 is not available");
    }
    eprintln!("skipped: python3 is not available");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn suite() -> String {
    let mut s = String::from("version: 1\nsuite: slow\ncases:\n");
    for i in 0..CASES {
        s.push_str(&format!(
            "  - id: q{i:02}\n    prompt: \"Question {i}\"\n    expect: [{{type: contains, value: \"answer-{i}\"}}]\n"
        ));
    }
    s
}

/// A project whose one model is `model_yaml` (indented under `models: slow:`).
fn project(model_yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("llmtest.yaml"),
        format!(
            "version: 1\ndefault_profile: live\nresults: results\nmodels:\n  slow:\n{model_yaml}profiles:\n  live: {{mode: live, models: [slow]}}\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("suites")).unwrap();
    std::fs::write(dir.path().join("suites/slow.yaml"), suite()).unwrap();
    dir
}

fn external_model(port: u16) -> String {
    format!(
        "    backend: openai\n    base_url: \"http://127.0.0.1:{port}/v1\"\n    model: slow\n    stream: false\n    max_concurrency: 1\n    max_retries: 0\n"
    )
}

fn cli(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llmtest"));
    c.current_dir(dir)
        .args(args)
        .env_remove("CI")
        .env_remove("LLMTEST_PROFILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    cli(dir, args).output().unwrap()
}

/// The test's own server, stopped by pid when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(py: &str, port: u16, log: &Path) -> Server {
        let child = Command::new(py)
            .arg(script())
            .args(["--port", &port.to_string(), "--delay", "0.3", "--log"])
            .arg(log)
            .spawn()
            .unwrap();
        // Ready when it accepts connections (bounded).
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the slow server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            log: log.to_owned(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prompts the server was asked, in order (questions only, not readiness checks).
fn asked(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("Question "))
        .map(str::to_owned)
        .collect()
}

fn journal_lines(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("results/journal.jsonl")).unwrap_or_default();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let n = if complete {
        lines.len()
    } else {
        lines.len().saturating_sub(1)
    };
    lines[..n]
        .iter()
        .map(|l| serde_json::from_str(l).expect("a whole journal line is JSON"))
        .collect()
}

fn wait_for_journal(dir: &Path, at_least: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = journal_lines(dir).len();
        if n >= at_least {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "the journal stayed at {n} line(s)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the CLI did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cases and summary without latency, which no two runs share.
fn comparable(path: &Path) -> Value {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for c in v["cases"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("timings");
    }
    for cells in v["summary"]["matrix"].as_object_mut().unwrap().values_mut() {
        for cell in cells.as_object_mut().unwrap().values_mut() {
            cell.as_object_mut()
                .unwrap()
                .retain(|k, _| !k.ends_with("_p50"));
        }
    }
    serde_json::json!({"cases": v["cases"], "summary": v["summary"], "profile": v["profile"]})
}

#[test]
fn sigkill_midway_then_resume_requests_only_what_was_not_finished() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(py, port, &tmp.path().join("asked.log"));

    // The reference: one uninterrupted run.
    let whole = project(&external_model(port));
    let out = run(
        whole.path(),
        &["run", "--format", "json", "-o", "whole.json"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(asked(&server.log).len(), CASES);
    let before = asked(&server.log).len();

    // Killed with SIGKILL once a few cases are journaled.
    let dir = project(&external_model(port));
    let mut child = cli(dir.path(), &["run", "--format", "json", "-o", "out.json"])
        .spawn()
        .unwrap();
    wait_for_journal(dir.path(), 4);
    child.kill().unwrap(); // SIGKILL
    let status = wait_exit(&mut child);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let finished: Vec<String> = journal_lines(dir.path())
        .iter()
        .map(|l| l["result"]["case"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        finished.len() >= 4 && finished.len() < CASES,
        "{finished:?}"
    );
    assert!(
        !dir.path().join("out.json").exists(),
        "a killed run writes no results"
    );

    let out = run(
        dir.path(),
        &["run", "--resume", "--format", "json", "-o", "out.json"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "resuming: {} item(s) from the journal, {} to run",
            finished.len(),
            CASES - finished.len()
        )),
        "{stderr}"
    );

    // Every case was asked; none that had finished was asked again; at most the one in
    // flight at the kill was asked twice.
    let asked_now = &asked(&server.log)[before..];
    for i in 0..CASES {
        let n = asked_now
            .iter()
            .filter(|p| **p == format!("Question {i}"))
            .count();
        let id = format!("q{i:02}");
        if finished.contains(&id) {
            assert_eq!(
                n, 1,
                "{id} had finished before the kill but was asked {n} times"
            );
        } else {
            assert!((1..=2).contains(&n), "{id} asked {n} times");
        }
    }
    assert!(asked_now.len() <= CASES + 1, "{asked_now:?}");
    assert_eq!(
        comparable(&dir.path().join("out.json")),
        comparable(&whole.path().join("whole.json")),
        "resumed results equal an uninterrupted run's"
    );

    // A changed case is not reused: edit one prompt, resume, and only it is asked.
    let suite = suite().replace("\"Question 3\"", "\"Question 3 (again)\"");
    std::fs::write(dir.path().join("suites/slow.yaml"), suite).unwrap();
    let mark = asked(&server.log).len();
    let out = run(
        dir.path(),
        &["run", "--resume", "--format", "json", "-o", "out.json"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(asked(&server.log)[mark..], ["Question 3 (again)"]);
}

#[test]
fn ctrl_c_stops_the_managed_server_and_leaves_a_whole_journal() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("asked.log");
    let model = format!(
        "    backend: openai\n    model: slow\n    stream: false\n    max_concurrency: 1\n    max_retries: 0\n    server:\n      command: [{py}, \"{}\", --port, \"{{port}}\", --delay, \"0.3\", --log, \"{}\"]\n      ready_timeout_s: 30\n",
        script().display(),
        log.display()
    );
    let dir = project(&model);
    let mut child = cli(dir.path(), &["run", "--format", "json", "-o", "out.json"])
        .spawn()
        .unwrap();
    wait_for_journal(dir.path(), 3);
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(130), "interrupted exit code");
    let pid = std::fs::read_to_string(log.with_extension("log.pid")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the managed server (pid {pid}) is still running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every line is whole JSON (journal_lines panics otherwise), and the run can finish.
    let done = journal_lines(dir.path()).len();
    assert!((3..CASES).contains(&done), "{done}");
    let out = run(
        dir.path(),
        &["run", "--resume", "--format", "json", "-o", "out.json"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap())
            .unwrap();
    assert_eq!(v["cases"].as_array().unwrap().len(), CASES);
    assert_eq!(v["summary"]["by_outcome"]["pass"], CASES / 2);
}

/// An offline project (the `outputs` backend) with 30 cases, for sharding.
fn answers_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("llmtest.yaml"),
        "version: 1\ndefault_profile: p\nresults: results\nmodels:\n  a:\n    backend: outputs\n    path: a.jsonl\n  b:\n    backend: outputs\n    path: b.jsonl\nprofiles:\n  p: {models: [a, b]}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("suites")).unwrap();
    let mut suite = String::from("version: 1\nsuite: s\nmode: completion\ncases:\n");
    let (mut a, mut b) = (String::new(), String::new());
    for i in 0..15 {
        suite.push_str(&format!("  - id: c{i:02}\n    prompt: \"{i}\"\n    expect: [{{type: contains, value: \"ok-{i}\"}}]\n"));
        a.push_str(&format!(
            "{{\"case\": \"c{i:02}\", \"output\": \"ok-{i}\"}}\n"
        ));
        b.push_str(&format!(
            "{{\"case\": \"c{i:02}\", \"output\": \"ok-{}\"}}\n",
            i % 4
        ));
    }
    std::fs::write(dir.path().join("suites/s.yaml"), suite).unwrap();
    std::fs::write(dir.path().join("a.jsonl"), a).unwrap();
    std::fs::write(dir.path().join("b.jsonl"), b).unwrap();
    dir
}

#[test]
fn three_shards_merged_equal_the_unsharded_run_and_bad_merges_are_refused() {
    let dir = answers_project();
    let d = dir.path();
    let out = run(d, &["run", "--format", "json", "-o", "whole.json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = |extra: &[&str]| {
        let mut args = vec!["list"];
        args.extend(extra);
        let o = Command::new(env!("CARGO_BIN_EXE_llmtest"))
            .current_dir(d)
            .args(&args)
            .output()
            .unwrap();
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let all = list(&[]);
    assert_eq!(all.len(), 30);
    let mut union = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let items = list(&["--shard", &shard]);
        assert!(
            !items.is_empty() && items.len() < 30,
            "shard {shard}: {items:?}"
        );
        union.extend(items);
        let out = run(
            d,
            &[
                "run",
                "--shard",
                &shard,
                "--format",
                "json",
                "-o",
                &format!("s{k}.json"),
            ],
        );
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    union.sort();
    assert_eq!(union, all, "the shards partition the items");

    let merge = |files: &[&str]| {
        let mut args = vec!["merge"];
        args.extend(files);
        args.extend(["-o", "merged.json"]);
        run(d, &args)
    };
    let out = merge(&["s1.json", "s2.json", "s3.json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        comparable(&d.join("merged.json")),
        comparable(&d.join("whole.json"))
    );

    let refused = |files: &[&str], says: &str| {
        let out = merge(files);
        let e = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{e}");
        assert!(e.contains(says), "expected `{says}` in: {e}");
    };
    refused(&["s1.json", "s2.json"], "missing shard(s) 3 of 3");
    refused(
        &["s1.json", "s1.json", "s2.json", "s3.json"],
        "shard 1/3 appears twice",
    );
    refused(&["s1.json", "s2.json", "whole.json"], "shard count");
    // A shard run after a prompt was edited belongs to a different run.
    let suite = std::fs::read_to_string(d.join("suites/s.yaml"))
        .unwrap()
        .replace("prompt: \"7\"", "prompt: \"seven\"");
    std::fs::write(d.join("suites/s.yaml"), suite).unwrap();
    let out = run(
        d,
        &[
            "run",
            "--shard",
            "3/3",
            "--format",
            "json",
            "-o",
            "s3-edited.json",
        ],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)));
    refused(
        &["s1.json", "s2.json", "s3-edited.json"],
        "suite `s` (its cases or assertions changed)",
    );
}
