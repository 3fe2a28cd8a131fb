//! Model-graded assertions end to end through the `llmtest` binary, with the judge behind
//! the in-process scripted OpenAI server (127.0.0.1): a readable verdict, an unreadable
//! one, a judge that answers 503 or 429, one that stalls past its timeout, repeated verdicts that
//! straddle the threshold, and a pairwise comparison whose answer comes from another
//! model's trial. Judge failures are `judge_error` (exit 3), never a score.

#[path = "../../llmtest-openai/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Hit, Reply, TestServer};

const SUITE: &str = r#"version: 1
suite: judged
mode: completion
cases:
  - {id: good, prompt: "q good", expect: [{type: rubric, rubric: The answer is helpful.}]}
  - {id: prose, prompt: "q prose", expect: [{type: rubric, rubric: The answer is helpful., structured: none}]}
  - {id: overloaded, prompt: "q overloaded", expect: [{type: rubric, rubric: The answer is helpful.}]}
  - {id: slow, prompt: "q slow", expect: [{type: rubric, rubric: The answer is helpful.}]}
  - {id: limited, prompt: "q limited", expect: [{type: rubric, rubric: The answer is helpful.}]}
  - id: straddle
    prompt: "q straddle"
    expect:
      - {type: closed-qa, criterion: c, judge_samples: 3}
"#;

const PAIR: &str = r#"version: 1
suite: pair
mode: completion
models: [candidate]
cases:
  - id: compare
    prompt: "q compare"
    expect:
      - {type: pairwise, against: other}
"#;

fn config(base_url: &str) -> String {
    format!(
        r#"version: 1
default_profile: p
models:
  candidate: {{backend: outputs, path: candidate.jsonl}}
  other: {{backend: outputs, path: other.jsonl}}
  judge:
    backend: openai
    base_url: "{base_url}"
    model: judge
    stream: false
    max_retries: 1
    backoff_initial_s: 0.01
    read_timeout_s: 1
    request_timeout_s: 2
profiles:
  p: {{mode: live, judge: judge, models: [candidate]}}
  nojudge: {{mode: live, models: [candidate]}}
"#
    )
}

fn answers(model: &str) -> String {
    let mut out = String::new();
    for case in ["good", "prose", "overloaded", "slow", "limited", "straddle"] {
        out.push_str(
            &json!({"suite": "judged", "case": case, "output": format!("ANSWER-{case}")})
                .to_string(),
        );
        out.push('\n');
    }
    let pair = if model == "candidate" {
        "ANSWER-pair BETTER"
    } else {
        "ANSWER-pair worse"
    };
    out.push_str(&json!({"suite": "pair", "case": "compare", "output": pair}).to_string());
    out.push('\n');
    out
}

fn reply(texts: &[String]) -> Reply {
    let choices: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}))
        .collect();
    Reply::json(json!({
        "id": "x", "object": "chat.completion", "model": "judge",
        "choices": choices,
        "usage": {"prompt_tokens": 100, "completion_tokens": 20},
    }))
}

/// The judge: answers by which candidate answer its prompt holds.
fn judge(i: usize, hit: &Hit) -> Reply {
    let _ = i;
    let user = hit.body["messages"][1]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let n = hit.body["n"].as_u64().unwrap_or(1) as usize;
    let one = |t: &str| reply(&vec![t.to_owned(); n]);
    if user.contains("ANSWER-good") {
        one(r#"{"reason": "helpful", "score": 5}"#)
    } else if user.contains("ANSWER-prose") {
        one("What a lovely answer, I would say it is rather good.")
    } else if user.contains("ANSWER-overloaded") {
        Reply::status(503, "overloaded")
    } else if user.contains("ANSWER-limited") {
        Reply::status(429, "slow down").header("retry-after", "0")
    } else if user.contains("ANSWER-slow") {
        Reply::Status {
            code: 200,
            headers: vec![],
            body: String::new(),
            delay: Duration::from_secs(5),
        }
    } else if user.contains("ANSWER-straddle") {
        let v = |y: &str| format!(r#"{{"reason": "r", "verdict": "{y}"}}"#);
        reply(&[v("Y"), v("N"), v("Y")][..n.clamp(1, 3)])
    } else if user.contains("ANSWER-pair") {
        // Prefers the better answer in whichever position it is.
        let a = user.split("[Answer A]").nth(1).unwrap_or_default();
        let a = a.split("[Answer B]").next().unwrap_or_default();
        let w = if a.contains("BETTER") { "A" } else { "B" };
        one(&format!(r#"{{"reason": "r", "winner": "{w}"}}"#))
    } else {
        Reply::status(400, "unexpected prompt")
    }
}

fn project(base_url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("llmtest.yaml"), config(base_url)).unwrap();
    std::fs::create_dir_all(p.join("suites")).unwrap();
    std::fs::write(p.join("suites/judged.yaml"), SUITE).unwrap();
    std::fs::write(p.join("suites/pair.yaml"), PAIR).unwrap();
    std::fs::write(p.join("candidate.jsonl"), answers("candidate")).unwrap();
    std::fs::write(p.join("other.jsonl"), answers("other")).unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, Value) {
    let out = dir.join("results.json");
    let o = Command::new(env!("CARGO_BIN_EXE_llmtest"))
        .current_dir(dir)
        .args(["run", "--format", "json", "--output"])
        .arg(&out)
        .args(args)
        .env_remove("LLMTEST_PROFILE")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    let v = std::fs::read_to_string(&out)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (o.status.code(), log, v)
}

fn case<'a>(v: &'a Value, suite: &str, id: &str) -> &'a Value {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["suite"] == suite && c["case"] == id)
        .unwrap_or_else(|| panic!("no case {suite}::{id} in {v}"))
}

#[test]
fn judge_verdicts_failures_and_instability() {
    let server = TestServer::start_isolated(judge);
    let dir = project(&server.base_url());
    let (code, log, v) = run(dir.path(), &[]);
    assert_eq!(code, Some(3), "judge errors are infrastructure: {log}");

    let good = case(&v, "judged", "good");
    assert_eq!(good["outcome"], "pass", "{good}");
    assert_eq!(good["score"], 1.0, "5 of 1–5");
    // The judge's cost is reported apart from the candidate's (which has none here).
    assert_eq!(good["judge"]["calls"], 1, "{good}");
    assert_eq!(good["judge"]["prompt_tokens"], 100);
    assert_eq!(good["judge"]["completion_tokens"], 20);
    assert!(good["usage"].is_null(), "{good}");
    assert_eq!(good["judge"]["models"], json!(["judge"]), "{good}");
    // And summed on the console: every request sent to the judge counts (failed ones too),
    // the tokens of those that answered; the candidates (answer files) used none.
    assert!(
        log.contains("llmtest: judge judge: 8 call(s) for 7 case(s), 500 prompt + 100 completion tokens (the candidates' on those cases: 0 + 0); "),
        "{log}"
    );
    let a = &good["samples"][0]["assertions"][0];
    assert_eq!(a["detail"]["judge"], "judge");

    for id in ["prose", "overloaded", "slow", "limited"] {
        let c = case(&v, "judged", id);
        assert_eq!(c["outcome"], "judge_error", "{id}: {c}");
        let found = c["samples"][0]["assertions"][0]["found"].as_str().unwrap();
        let why = match id {
            "prose" => "no `score`",
            "overloaded" => "server",
            "limited" => "rate_limited",
            _ => "timeout",
        };
        assert!(found.contains(why), "{id}: {found}");
    }
    assert_eq!(case(&v, "judged", "straddle")["outcome"], "unstable");
    // The pairwise judge saw both orders and preferred the better answer in each: a win.
    let pair = case(&v, "pair", "compare");
    assert_eq!(pair["outcome"], "pass", "{pair}");
    assert_eq!(pair["score"], 1.0);
    assert_eq!(pair["judge"]["calls"], 2);
    // The structured-output request: a JSON schema for the verdict.
    let hits = server.hits();
    let good_hit = hits
        .iter()
        .find(|h| h.body.to_string().contains("ANSWER-good"))
        .unwrap();
    let rf = &good_hit.body["response_format"];
    assert_eq!(rf["type"], "json_schema", "{rf}");
    assert_eq!(
        rf["json_schema"]["schema"]["properties"]["score"]["maximum"],
        5
    );
    // `structured: none` asks for no response_format (the prompt describes the JSON).
    let prose_hit = hits
        .iter()
        .find(|h| h.body.to_string().contains("ANSWER-prose"))
        .unwrap();
    assert!(
        prose_hit.body.get("response_format").is_none(),
        "{}",
        prose_hit.body
    );
    // 503 was retried once (max_retries: 1), then given up.
    let overloaded = hits
        .iter()
        .filter(|h| h.body.to_string().contains("ANSWER-overloaded"))
        .count();
    assert_eq!(overloaded, 2);
    assert_eq!(
        v["summary"]["by_outcome"]["judge_error"], 4,
        "{}",
        v["summary"]
    );
}

#[test]
fn a_judged_suite_without_a_judge_is_a_config_error() {
    let dir = project("http://127.0.0.1:9/v1");
    let (code, log, _) = run(dir.path(), &["--profile", "nojudge"]);
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("has no judge model"), "{log}");
    assert!(log.contains("judged.yaml:"), "located: {log}");
}

const SET: &str = r#"version: 1
suite: calibration-mini
models: []
defaults:
  expect:
    - {type: closed-qa, criterion: "{{ criterion }}"}
cases:
  - {id: a, prompt: q, vars: {answer: "CAL-yes", label: pass, criterion: c}}
  - {id: b, prompt: q, vars: {answer: "CAL-yes", label: pass, criterion: c}}
  - {id: c, prompt: q, vars: {answer: "CAL-no", label: fail, criterion: c}}
  - {id: d, prompt: q, vars: {answer: "CAL-yes", label: fail, criterion: c}}
"#;

/// A judge that says Y to `CAL-yes` and N to `CAL-no`: it agrees with 3 of the 4 labels.
fn cal_judge(_: usize, hit: &Hit) -> Reply {
    let user = hit.body["messages"][1]["content"]
        .as_str()
        .unwrap_or_default();
    let y = if user.contains("CAL-yes") { "Y" } else { "N" };
    reply(&[format!(r#"{{"reason": "r", "verdict": "{y}"}}"#)])
}

/// `llmtest calibrate ARGS` in `dir`: exit code, stdout, stderr.
fn calibrate(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_llmtest"))
        .current_dir(dir)
        .arg("calibrate")
        .args(args)
        .env_remove("LLMTEST_PROFILE")
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn calibrate_reports_agreement_and_gates_on_kappa() {
    let server = TestServer::start_isolated(cal_judge);
    let dir = project(&server.base_url());
    std::fs::write(dir.path().join("set.yaml"), SET).unwrap();
    let cal = |extra: &[&str]| calibrate(dir.path(), &[&["set.yaml"], extra].concat());
    let (code, out, err) = cal(&["--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let a = &v["sets"][0]["agreement"];
    assert_eq!(a["n"], 4);
    assert_eq!(a["accuracy"], 0.75);
    assert_eq!(a["confusion"], json!([[2, 0], [1, 1]]));
    // po = 0.75, pe = 0.5·0.75 + 0.5·0.25 = 0.5: κ = 0.5.
    assert!((a["kappa"].as_f64().unwrap() - 0.5).abs() < 1e-12, "{a}");
    let (code, out, _) = cal(&["--min-kappa", "0.6"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Cohen's kappa 0.500"), "{out}");
    assert!(out.contains("`d`: labelled fail, judge pass"), "{out}");
    // A set without labels is bad input.
    std::fs::write(
        dir.path().join("set.yaml"),
        SET.replace("label: fail, ", ""),
    )
    .unwrap();
    let (code, _, err) = cal(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("needs `vars.label: pass` or `fail`"), "{err}");
}

#[test]
fn calibrate_replays_the_repo_judge() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (code, out, _) = calibrate(&root, &["--profile", "ci", "--json"]);
    // One item has no verdict (llama-server answered 500 to that output when it was
    // recorded): a judge error, so the exit code says the measurement is incomplete.
    assert_eq!(code, Some(3), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let set = &v["sets"][0];
    assert_eq!(set["items"].as_array().unwrap().len(), 24);
    assert_eq!(set["judge_errors"], 1);
    let errors: Vec<&Value> = set["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["verdict"] == "judge_error")
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["id"], "translation-spanish");
    assert_eq!(set["agreement"]["n"], 23, "judge errors are left out");
    assert_eq!(set["agreement"]["confusion"], json!([[8, 3], [10, 2]]));

    // The README's example is the command's output: every line of its block, and the exit
    // code its comment states.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme
        .split("```\n$ llmtest calibrate ")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("README shows `llmtest calibrate`");
    let (command, shown) = block.split_once('\n').unwrap();
    let stated: i32 = command
        .rsplit("exit ")
        .next()
        .and_then(|c| c.trim().parse().ok())
        .expect("the README states the exit code");
    let (code, out, _) = calibrate(&root, &[]);
    assert_eq!(code, Some(stated), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    for line in shown.lines() {
        assert!(
            lines.contains(&line),
            "README line not printed: {line}\n{out}"
        );
    }
    assert!(
        out.contains("- `translation-spanish`: labelled fail, judge judge_error:"),
        "the error is listed with its reason: {out}"
    );
}

#[test]
fn a_suite_names_its_judge_in_defaults() {
    let server = TestServer::start_isolated(judge);
    let dir = project(&server.base_url());
    let suite = "version: 1\nsuite: judged\nmode: completion\ndefaults:\n  judge: judge\ncases:\n  - {id: good, prompt: \"q good\", expect: [{type: rubric, rubric: r}]}\n";
    std::fs::write(dir.path().join("suites/judged.yaml"), suite).unwrap();
    std::fs::remove_file(dir.path().join("suites/pair.yaml")).unwrap();
    let (code, log, v) = run(dir.path(), &["--profile", "nojudge"]);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(case(&v, "judged", "good")["judge"]["calls"], 1);
    std::fs::write(
        dir.path().join("suites/judged.yaml"),
        suite.replace("judge: judge", "judge: jugde"),
    )
    .unwrap();
    let (code, log, _) = run(dir.path(), &["--profile", "nojudge"]);
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("`judge: jugde` is not a configured model"),
        "{log}"
    );
    assert!(log.contains("did you mean `judge`"), "{log}");
}
