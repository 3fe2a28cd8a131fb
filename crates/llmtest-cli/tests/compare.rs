//! `llmtest compare` end to end: hand-made results files (exit codes 0, 1, 2, Markdown and
//! JSON), and the `compare:` trial of a profile on the committed answer sets
//! `fixtures/outputs/compare-table-qa-zh-{baseline,candidate}.jsonl`, offline.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn llmtest(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmtest"))
        .current_dir(dir)
        .args(args)
        .env_remove("CI")
        .env_remove("INSTA_UPDATE")
        .env_remove("LLMTEST_PROFILE")
        .output()
        .unwrap()
}

/// The harness's compare trials under `profile` (the harness takes libtest's arguments only:
/// the profile comes from LLMTEST_PROFILE).
fn compare_trials(dir: &Path, profile: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmtest"))
        .current_dir(dir)
        .args(["test", "--", "compare::"])
        .env("LLMTEST_PROFILE", profile)
        .env_remove("CI")
        .env_remove("INSTA_UPDATE")
        .output()
        .unwrap()
}

/// Asserts that `out` contains every one of `needles`.
fn has_all(out: &str, needles: &[&str]) {
    for n in needles {
        assert!(out.contains(n), "no {n:?} in\n{out}");
    }
}

/// Asserts the exit code of `o` and that its output contains every one of `needles`.
fn check(o: &Output, code: i32, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    has_all(&text(o), needles);
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A results file as `llmtest run` writes it: `model` answered the cases `c0`…, passing the
/// ones marked true.
fn results(model: &str, passes: &[bool]) -> Value {
    let cases: Vec<Value> = passes
        .iter()
        .enumerate()
        .map(|(i, &ok)| {
            let (answer, found) = if ok { ("共 42 台", "42") } else { ("共 24 台", "24") };
            json!({
                "suite": "units", "case": format!("c{i}"), "model": model,
                "outcome": if ok { "pass" } else { "fail" }, "score": if ok { 1.0 } else { 0.0 },
                "weight": 1.0,
                "samples": [{
                    "index": 0, "outcome": if ok { "pass" } else { "fail" },
                    "score": if ok { 1.0 } else { 0.0 }, "answer": answer, "output": answer,
                    "reasoning_chars": 0, "reasoning_status": "none",
                    "assertions": [{"type": "number", "pass": ok, "score": if ok { 1.0 } else { 0.0 },
                                    "weight": 1.0, "expected": "42 台", "found": found}]
                }]
            })
        })
        .collect();
    json!({
        "schema_version": 1, "llmtest_version": "0.1.0", "profile": "ci", "mode": "replay",
        "models": [{"name": model, "backend": "outputs"}],
        "cases": cases,
        "summary": {"total": passes.len(), "by_outcome": {}, "matrix": {}}
    })
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

#[test]
fn compare_exit_codes_markdown_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 10 cases: the candidate loses 7 the baseline passed and gains none → p = 2/128.
    let fp = [true; 10];
    let q4 = [
        true, false, false, true, false, true, false, false, false, false,
    ];
    write(d, "fp.json", &results("tiny-fp", &fp));
    write(d, "q4.json", &results("tiny-q4", &q4));

    let o = llmtest(d, &["compare", "fp.json", "q4.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("### 🔻 pass → fail (7)"), "{md}");
    assert!(md.contains("- **units::c1**"), "{md}");
    assert!(
        md.contains(
            "  - candidate (fail): `共 24 台`\n    - ✗ number: expected `42 台`; found `24`"
        ),
        "{md}"
    );
    assert!(
        md.contains("| candidate | tiny-q4 | 3/10 | 30.0% | 10.8% – 60.3% |"),
        "{md}"
    );
    assert!(md.contains("two-sided p = 0.016."), "{md}");
    assert!(
        md.contains("**Verdict: 🔻 regression** at α = 0.05"),
        "{md}"
    );
    assert!(text(&o).contains("llmtest compare: regression: tiny-fp 100.0% → tiny-q4 30.0%"));

    // The other way round it is an improvement; at α = 0.01 the drop is not significant.
    let o = llmtest(d, &["compare", "q4.json", "fp.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("**Verdict: 🔺 improvement**"));
    let o = llmtest(d, &["compare", "fp.json", "q4.json", "--alpha", "0.01"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no significant change"));

    // JSON to a file: versioned, every flip, the same verdict and exit code.
    let o = llmtest(
        d,
        &[
            "compare",
            "fp.json",
            "q4.json",
            "--format",
            "json",
            "-o",
            "out/compare.json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/compare.json")).unwrap())
            .unwrap();
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["verdict"], "regression");
    assert_eq!(
        (j["worse"].as_u64(), j["better"].as_u64()),
        (Some(7), Some(0))
    );
    assert!((j["p_value"].as_f64().unwrap() - 2.0 / 128.0).abs() < 1e-12);
    assert_eq!(j["flips"].as_array().unwrap().len(), 7);
    assert_eq!(j["candidate"]["file"], "q4.json");

    // Two models of one results file.
    let mut both = results("tiny-fp", &fp);
    let other = results("tiny-q4", &q4);
    both["cases"]
        .as_array_mut()
        .unwrap()
        .extend(other["cases"].as_array().unwrap().iter().cloned());
    write(d, "both.json", &both);
    let o = llmtest(
        d,
        &[
            "compare",
            "both.json",
            "--baseline",
            "tiny-fp",
            "--candidate",
            "tiny-q4",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("### 🔻 pass → fail (7)"));
}

#[test]
fn compare_bad_input_exits_2_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "fp.json", &results("tiny-fp", &[true; 6]));
    write(d, "short.json", &results("tiny-q4", &[true; 4]));
    let mut future = results("tiny-q4", &[true; 6]);
    future["schema_version"] = json!(99);
    write(d, "future.json", &future);
    let mut both = results("tiny-fp", &[true; 6]);
    let q = results("tiny-q4", &[false; 6]);
    both["cases"]
        .as_array_mut()
        .unwrap()
        .extend(q["cases"].as_array().unwrap().iter().cloned());
    write(d, "both.json", &both);
    let mut edited = results("tiny-q4", &[true; 6]);
    edited["cases"][2]["samples"][0]["assertions"][0]["expected"] = json!("43 台");
    write(d, "edited.json", &edited);

    let identity = |hash: &str| json!({"config": "c", "suites": {"units": hash}, "items": 6});
    let mut before = results("tiny-fp", &[true; 6]);
    before["identity"] = identity("aaaa");
    write(d, "before.json", &before);
    let mut after = results("tiny-q4", &[true; 6]);
    after["identity"] = identity("bbbb");
    write(d, "after.json", &after);
    after["identity"] = identity("aaaa");
    write(d, "same-suite.json", &after);
    let o = llmtest(d, &["compare", "before.json", "same-suite.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let expect_2 = |args: &[&str], needle: &str| {
        let o = llmtest(d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains(needle),
            "{args:?}: no {needle:?} in {}",
            text(&o)
        );
    };
    // Different cases: which ones.
    expect_2(
        &["compare", "fp.json", "short.json"],
        "only in the baseline: units::c4, units::c5",
    );
    // The same case expecting another answer: the suite changed.
    expect_2(&["compare", "fp.json", "edited.json"], "units::c2");
    // Both files record their suites' hashes, and they differ.
    expect_2(
        &["compare", "before.json", "after.json"],
        "suite(s) units changed between the two runs",
    );
    // Another results schema version.
    expect_2(
        &["compare", "fp.json", "future.json"],
        "results schema version 99",
    );
    // Unknown and unnamed models.
    expect_2(
        &[
            "compare",
            "both.json",
            "--baseline",
            "tiny-fq",
            "--candidate",
            "tiny-q4",
        ],
        "no model `tiny-fq`; it holds tiny-fp, tiny-q4",
    );
    expect_2(
        &["compare", "both.json"],
        "name one with `--baseline MODEL`",
    );
    expect_2(
        &[
            "compare",
            "both.json",
            "--baseline",
            "tiny-fp",
            "--candidate",
            "tiny-fp",
        ],
        "the same results",
    );
    expect_2(
        &["compare", "fp.json", "both.json", "--alpha", "0"],
        "--alpha 0 is out of range",
    );
    expect_2(
        &["compare", "missing.json", "fp.json"],
        "missing.json: cannot read",
    );
    std::fs::write(
        d.join("broken.json"),
        "{\"schema_version\": 1,\n  \"cases\": [}",
    )
    .unwrap();
    expect_2(&["compare", "broken.json", "fp.json"], "broken.json:2:");
}

/// The repo's table suite and the two committed answer sets, in a project whose profiles
/// hold `compare:` blocks.
fn compare_project(config: &str) -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["suites", "fixtures/tables", "fixtures/outputs"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::copy(
        repo.join("suites/table-qa-zh.yaml"),
        d.join("suites/table-qa-zh.yaml"),
    )
    .unwrap();
    for e in std::fs::read_dir(repo.join("fixtures/tables")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, d.join("fixtures/tables").join(p.file_name().unwrap())).unwrap();
    }
    for side in ["baseline", "candidate"] {
        let name = format!("fixtures/outputs/compare-table-qa-zh-{side}.jsonl");
        std::fs::copy(repo.join(&name), d.join(&name)).unwrap();
    }
    std::fs::write(d.join("llmtest.yaml"), config).unwrap();
    dir
}

const COMPARE_CONFIG: &str = r#"version: 1
default_profile: gate
models:
  fp:
    backend: outputs
    path: fixtures/outputs/compare-table-qa-zh-baseline.jsonl
  q4:
    backend: outputs
    path: fixtures/outputs/compare-table-qa-zh-candidate.jsonl
profiles:
  gate:
    models: [fp, q4]
    compare:
      - {baseline: fp, candidate: q4}
  tolerant:
    models: [fp, q4]
    compare:
      - {baseline: fp, candidate: q4, max_drop: 0.4}
      - {baseline: q4, candidate: fp}
  detects:
    models: [fp, q4]
    compare:
      - {baseline: fp, candidate: q4, expect: regression}
      - {baseline: q4, candidate: fp, expect: no_significant_change}
"#;

#[test]
fn compare_trial_fails_on_the_answer_sets_regression_and_passes_within_max_drop() {
    let dir = compare_project(COMPARE_CONFIG);
    let d = dir.path();
    let name = "table-qa-zh::compare::fp-vs-q4";

    let o = llmtest(d, &["test", "--", "--list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(&format!("{name}: test")), "{}", text(&o));

    // The candidate loses 8 of the baseline's 19 passes and wins 1: p = 20/512 < 0.05.
    let o = llmtest(d, &["test", "--", "--exact", name]);
    check(
        &o,
        101,
        &[
            "### 🔻 pass → fail (8)",
            "- **table-qa-zh::xinghe-finance-cost**",
            "### 🔺 fail → pass (1)",
            "| baseline | fp | 19/21 | 90.5% |",
            "| candidate | q4 | 12/21 | 57.1% |",
            "two-sided p = 0.039.",
            "The drop of 33.3 points exceeds max_drop 0.0 points.",
            "1 failed",
        ],
    );

    // Within max_drop, and the reverse comparison (an improvement), both pass.
    let o = compare_trials(d, "tolerant");
    check(
        &o,
        0,
        &[
            "table-qa-zh::compare::fp-vs-q4 ... ok",
            "table-qa-zh::compare::q4-vs-fp ... ok",
            "2 passed",
        ],
    );

    // `expect:` asserts the verdict: the regression is detected (a pass); the reverse is an
    // improvement, not "no significant change" (a failure saying so).
    let o = compare_trials(d, "detects");
    check(
        &o,
        101,
        &[
            "table-qa-zh::compare::fp-vs-q4 ... ok",
            "table-qa-zh::compare::q4-vs-fp ... FAILED",
            "**Verdict: 🔺 improvement**",
            "Expected the verdict `no significant change`.",
        ],
    );

    // The CLI on the run's results says the same.
    let o = llmtest(d, &["run", "--format", "json", "-o", "run.json"]);
    check(
        &o,
        1,
        &[
            "llmtest: compare table-qa-zh::compare::fp-vs-q4: regression: fp 90.5% → q4 57.1% \
           (8 worse, 1 better of 21 paired; McNemar p = 0.039) — beyond max_drop 0",
        ],
    );
    let o = llmtest(
        d,
        &[
            "compare",
            "run.json",
            "--baseline",
            "fp",
            "--candidate",
            "q4",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("two-sided p = 0.039."), "{}", text(&o));
}

#[test]
fn compare_block_is_validated_with_locations() {
    let bad = COMPARE_CONFIG.replace(
        "      - {baseline: fp, candidate: q4}\n",
        "      - {baseline: fp, candidate: q5, alpha: 1.5}\n",
    );
    let dir = compare_project(&bad);
    let o = llmtest(dir.path(), &["validate"]);
    check(
        &o,
        2,
        &[
            "compare candidate `q5` is not one of profile `gate`'s models",
            "llmtest.yaml:14:35",
            "compare alpha 1.5 is out of range",
        ],
    );
}

const REPLAY_SUITE: &str = r#"version: 1
suite: units
mode: completion
cases:
  - {id: c0, prompt: q0, expect: [{type: contains, value: "42"}]}
  - {id: c1, prompt: q1, expect: [{type: contains, value: "42"}]}
  - {id: c2, prompt: q2, expect: [{type: contains, value: "42"}]}
  - {id: c3, prompt: q3, expect: [{type: contains, value: "42"}]}
  - {id: c4, prompt: q4, expect: [{type: contains, value: "42"}]}
  - {id: c5, prompt: q5, expect: [{type: contains, value: "42"}]}
  - {id: c6, prompt: q6, expect: [{type: contains, value: "42"}]}
  - {id: c7, prompt: q7, expect: [{type: contains, value: "42"}]}
"#;

/// `fp` answers 42 to everything; `q4` gets q1, q2, q3, q5, q6 and q7 wrong. `BROKEN` makes
/// both commands fail, so a replayed run proves it never called them.
fn replay_config(broken: bool) -> String {
    let (fp, q4) = if broken {
        ("exit 1".to_owned(), "exit 1".to_owned())
    } else {
        (
            "echo 42".to_owned(),
            "read p; case $p in q1|q2|q3|q5|q6|q7) echo 24;; *) echo 42;; esac".to_owned(),
        )
    };
    format!(
        r#"version: 1
models:
  fp: {{backend: exec, command: [sh, -c, "{fp}"]}}
  q4: {{backend: exec, command: [sh, -c, "{q4}"]}}
profiles:
  record: {{mode: record, models: [fp, q4]}}
  replay:
    mode: replay
    models: [fp, q4]
    compare:
      - {{baseline: fp, candidate: q4}}
"#
    )
}

#[test]
fn compare_trial_replays_from_cassettes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("suites")).unwrap();
    std::fs::write(d.join("suites/units.yaml"), REPLAY_SUITE).unwrap();
    std::fs::write(d.join("llmtest.yaml"), replay_config(false)).unwrap();
    let o = llmtest(d, &["record", "--profile", "record"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    std::fs::write(d.join("llmtest.yaml"), replay_config(true)).unwrap();
    let o = compare_trials(d, "replay");
    assert_eq!(o.status.code(), Some(101), "{}", text(&o));
    let out = text(&o);
    // Six pass → fail of eight, none the other way: p = 2/64 < 0.05.
    has_all(
        &out,
        &[
            "units::compare::fp-vs-q4 ... FAILED",
            "### 🔻 pass → fail (6)",
            "two-sided p = 0.031.",
            "| candidate | q4 | 2/8 | 25.0% |",
        ],
    );
}
