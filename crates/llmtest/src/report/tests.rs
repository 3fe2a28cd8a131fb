use serde_json::json;

use super::*;
use crate::results::{CaseResult, RESULTS_SCHEMA_VERSION, Summary};

fn case(
    suite: &str,
    id: &str,
    model: &str,
    outcome: &str,
    timings: serde_json::Value,
) -> CaseResult {
    let pass = outcome == "pass";
    let mut v = json!({
        "suite": suite, "case": id, "model": model, "outcome": outcome,
        "score": if pass { 1.0 } else { 0.0 }, "weight": 1.0,
        "samples": [{
            "index": 0, "outcome": outcome, "score": if pass { 1.0 } else { 0.0 },
            "answer": format!("the answer to {id} <b>"), "output": "x", "extracted": "42",
            "reasoning_chars": 0, "reasoning_status": "none",
            "assertions": [{"type": "number", "pass": pass, "score": 1.0, "weight": 1.0,
                            "expected": "42", "found": if pass { "42" } else { "41" }}]
        }]
    });
    if outcome == "infra_error" {
        v["samples"] = json!([]);
        v["error"] = json!({"kind": "timeout", "message": "read timed out", "retries": 2});
    }
    if !timings.is_null() {
        v["timings"] = timings;
    }
    serde_json::from_value(v).unwrap()
}

fn run(mode: &str, cases: Vec<CaseResult>) -> RunResults {
    RunResults {
        schema_version: RESULTS_SCHEMA_VERSION,
        llmtest_version: "0.1.0".into(),
        profile: "p".into(),
        mode: mode.into(),
        models: Vec::new(),
        summary: Summary::from_cases(&cases),
        cases,
        identity: None,
    }
}

fn live(ttft: f64) -> serde_json::Value {
    json!({"ttft_ms": ttft, "total_ms": ttft * 2.0, "tokens_per_s": 1000.0 / ttft})
}

#[test]
fn families_strip_quantization_and_serving_suffixes() {
    assert_eq!(family("Qwen2.5-7B-AWQ"), "Qwen2.5-7B");
    assert_eq!(family("Qwen2.5-7B"), "Qwen2.5-7B");
    assert_eq!(family("tiny-qwen2-onnx"), "tiny-qwen2");
    assert_eq!(family("tiny-qwen2-int4-onnx"), "tiny-qwen2");
    assert_eq!(family("qwen2.5-7b-instruct-q4_k_m"), "qwen2.5-7b-instruct");
    assert_eq!(family("QwQ-32B"), "QwQ-32B");
    assert_eq!(family("awq"), "awq");
    assert_eq!(family("reference-answers"), "reference-answers");
    assert_eq!(family("模型-q中"), "模型-q中");
    assert_eq!(family("m-Q8_0"), "m");
    assert_eq!(family("tiny-know-awq4-onnx"), "tiny-know");
    assert_eq!(family("tiny-know-q3-llamacpp"), "tiny-know");
    assert_eq!(family("m-int3"), "m");
    assert_eq!(family("tiny-know-reference"), "tiny-know-reference");
}

#[test]
fn flips_are_graded_changes_only() {
    let base = run(
        "live",
        vec![
            case("s", "a", "m", "pass", json!(null)),
            case("s", "b", "m", "fail", json!(null)),
            case("s", "c", "m", "pass", json!(null)),
            case("s", "d", "m", "pass", json!(null)),
        ],
    );
    let now = run(
        "live",
        vec![
            case("s", "a", "m", "fail", json!(null)),
            case("s", "b", "m", "pass", json!(null)),
            case("s", "c", "m", "infra_error", json!(null)),
            case("s", "d", "m", "pass", json!(null)),
        ],
    );
    let f = flips(&now, Some(&base));
    let got: Vec<(&str, bool)> = f
        .iter()
        .map(|f| (f.case.as_str(), f.regression()))
        .collect();
    assert_eq!(
        got,
        [("a", true), ("b", false)],
        "an infrastructure error is no flip"
    );
    let md = markdown(&now, Some(&base));
    assert!(md.contains("🔻 1 regression(s), 🔺 1 fix(es)"), "{md}");
    assert!(
        md.contains("| 🔻 | s | a | m | ✅ pass | ❌ fail |"),
        "{md}"
    );
    let page = html(&now, Some(&base));
    assert!(
        page.contains("▼1") && page.contains("▲1"),
        "flip badges in the heat map"
    );
    assert_eq!(page.matches("data-flip=1").count(), 2);
}

#[test]
fn markdown_of_a_10k_case_run_stays_under_the_limit_and_says_what_was_cut() {
    let mut cases = Vec::new();
    for m in [
        "Qwen2.5-7B",
        "Qwen2.5-7B-AWQ",
        "QwQ-32B",
        "QwQ-32B-AWQ",
        "tiny",
    ] {
        for s in ["gsm8k", "humaneval", "math", "table-qa"] {
            for i in 0..500 {
                let o = if (i * 7 + m.len()) % 5 == 0 {
                    "fail"
                } else {
                    "pass"
                };
                cases.push(case(
                    s,
                    &format!("case-{i:04}"),
                    m,
                    o,
                    live(100.0 + i as f64),
                ));
            }
        }
    }
    assert_eq!(cases.len(), 10_000);
    let r = run("live", cases);
    let md = markdown(&r, None);
    assert!(
        md.chars().count() <= MARKDOWN_LIMIT,
        "{} characters",
        md.chars().count()
    );
    // The summary is whole: every model row, grouped by family (AWQ beside its original).
    let awq = md
        .find("|  | Qwen2.5-7B-AWQ |")
        .expect("AWQ row under its family");
    let base = md
        .find("| **Qwen2.5-7B** | Qwen2.5-7B |")
        .expect("family row");
    assert!(base < awq);
    assert!(md.contains("## Latency (live requests only)"));
    assert!(
        md.contains("| tiny | 2000 | 350 ms |"),
        "medians: {}",
        &md[md.find("## Latency").unwrap()..][..600]
    );
    // What was cut is counted, and case rows that need attention came first.
    let note = md
        .find("**Cut to stay under 60000 characters:**")
        .expect("cut note");
    let shown = md.matches("| case-").count();
    let cut: usize = md[note..]
        .split_whitespace()
        .nth(6)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        shown + cut,
        2000,
        "every case row is either shown or counted as cut"
    );
    let gsm = &md[md.find("## gsm8k").unwrap()..];
    let first_row = gsm.lines().nth(4).unwrap();
    assert!(first_row.contains('❌'), "failing rows first: {first_row}");
}

#[test]
fn replayed_timings_are_never_plotted() {
    let r = run(
        "replay",
        vec![case(
            "s",
            "a",
            "m",
            "pass",
            json!({"ttft_ms": 5.0, "total_ms": 9.0, "replayed": true}),
        )],
    );
    let page = html(&r, None);
    assert!(page.contains("id=no-latency") && page.contains("1 replayed from cassettes"));
    assert!(!page.contains("<svg id=ttft"));
    assert!(markdown(&r, None).contains("replayed (1): not latency"));
}

#[test]
fn the_page_escapes_answers_and_fetches_nothing() {
    let r = run(
        "live",
        vec![
            case("s", "a", "m", "fail", live(10.0)),
            case("s", "b", "m", "infra_error", json!(null)),
        ],
    );
    let page = html(&r, None);
    assert!(page.contains("the answer to a &lt;b&gt;") && !page.contains("to a <b>"));
    assert!(page.contains("default-src 'none'"));
    assert!(page.contains("timeout: read timed out"));
    assert_eq!(page.matches("class=cell").count(), 1);
    assert!(page.contains("<svg id=ttft"));
}

#[test]
fn results_files_of_another_version_or_broken_are_refused_with_a_location() {
    let r = run("live", vec![case("s", "a", "m", "pass", json!(null))]);
    let text = serde_json::to_string_pretty(&r).unwrap();
    assert_eq!(RunResults::parse("r.json", &text).unwrap().cases.len(), 1);
    let v2 = text.replace("\"schema_version\": 1", "\"schema_version\": 2");
    let e = RunResults::parse("r.json", &v2).unwrap_err().to_string();
    assert!(
        e.contains("r.json: results schema version 2; this llmtest reads version 1"),
        "{e}"
    );
    let e = RunResults::parse("r.json", "{\n  \"schema_version\": 1,\n  oops\n}")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("r.json:3:3: not a results file"), "{e}");
}

/// A case on `model` whose candidate used `usage` tokens and whose assertions asked a judge
/// (`judge` is the results' `judge` object, or null for an unjudged case).
fn judged(id: &str, model: &str, usage: (u64, u64), judge: serde_json::Value) -> CaseResult {
    let mut c = case("s", id, model, "pass", live(50.0));
    c.usage = Some(
        serde_json::from_value(json!({"prompt_tokens": usage.0, "completion_tokens": usage.1}))
            .unwrap(),
    );
    c.judge = serde_json::from_value(judge).unwrap();
    c
}

fn judged_run() -> RunResults {
    run(
        "live",
        vec![
            judged(
                "a",
                "m",
                (30, 5),
                json!({"calls": 1, "models": ["judge-a"], "prompt_tokens": 100, "completion_tokens": 20, "total_ms": 400.0}),
            ),
            // pairwise: two calls.
            judged(
                "b",
                "m",
                (40, 6),
                json!({"calls": 2, "models": ["judge-a"], "prompt_tokens": 250, "completion_tokens": 40, "total_ms": 600.0}),
            ),
            judged(
                "c",
                "m",
                (10, 1),
                json!({"calls": 1, "models": ["judge-a"], "prompt_tokens": 90, "completion_tokens": 10, "total_ms": 0.0, "replayed": true}),
            ),
            // Not judged: its tokens are the candidate's alone and stay out of the judge table.
            judged("d", "m", (1000, 1000), json!(null)),
            judged(
                "a",
                "m2",
                (7, 3),
                json!({"calls": 1, "models": ["judge-b"], "prompt_tokens": 80, "completion_tokens": 9, "total_ms": 300.0}),
            ),
        ],
    )
}

#[test]
fn judge_costs_are_summed_apart_from_the_candidates() {
    let r = judged_run();
    let costs = judge_costs(&r);
    let m = &costs[&("m".to_owned(), "s".to_owned())];
    assert_eq!(
        (m.cases, m.calls, m.prompt_tokens, m.completion_tokens),
        (3, 4, 440, 70)
    );
    assert_eq!((m.live_calls, m.live_ms, m.replayed_cases), (3, 1000.0, 1));
    assert_eq!(
        (m.candidate_prompt_tokens, m.candidate_completion_tokens),
        (80, 12),
        "the unjudged case's 1000 tokens are not beside the judge's"
    );
    let t = judge_total(&r).unwrap();
    assert_eq!(
        (t.calls, t.prompt_tokens, t.completion_tokens),
        (5, 520, 79)
    );
    assert_eq!(t.ms_per_call(), Some(1300.0 / 4.0));
    assert_eq!(
        t.judges.iter().map(String::as_str).collect::<Vec<_>>(),
        ["judge-a", "judge-b"]
    );
    assert_eq!(
        judge_summary(&r).unwrap(),
        "judge judge-a, judge-b: 5 call(s) for 4 case(s), 520 prompt + 79 completion tokens (the candidates' on those cases: 87 + 15); 1.3 s over 4 live call(s), 325 ms/call; 1 case(s) replayed, not timed"
    );
    let none = run("live", vec![case("s", "a", "m", "pass", json!(null))]);
    assert!(judge_costs(&none).is_empty() && judge_summary(&none).is_none());
}

#[test]
fn reports_show_judge_tokens_and_time_beside_the_candidates() {
    let r = judged_run();
    let md = markdown(&r, None);
    let sec = &md[md
        .find("## Judge calls (apart from the candidates' figures)")
        .expect("judge section")..];
    assert!(
        sec.contains("| m | s | 3 | judge-a | 4 | 440 + 70 | 1.0 s over 3 live call(s), 333 ms/call; 1 case(s) replayed, not timed | 80 + 12 |"),
        "{sec}"
    );
    assert!(
        sec.contains(
            "| m2 | s | 1 | judge-b | 1 | 80 + 9 | 0.3 s over 1 live call(s), 300 ms/call | 7 + 3 |"
        ),
        "{sec}"
    );
    assert!(
        sec.contains("| **all** |  | 4 | judge-a, judge-b | 5 | 520 + 79 |"),
        "{sec}"
    );
    let page = html(&r, None);
    let t = &page[page.find("<table id=judge-table>").expect("judge table")..];
    let t = &t[..t.find("</table>").unwrap()];
    assert!(
        t.contains("<tr><th>m</th><td>s</td><td>3</td><td>judge-a</td><td>4</td><td>440 + 70</td><td>1.0 s over 3 live call(s), 333 ms/call; 1 case(s) replayed, not timed</td><td>80 + 12</td></tr>"),
        "{t}"
    );
    assert!(t.contains("<tr class=total><th>all</th>"), "{t}");
    // Each judged case says what its own judge calls cost; the unjudged one says nothing.
    assert!(page.contains("judge judge-a: 2 call(s), 250 + 40 tokens, 600 ms"));
    assert!(page.contains("judge judge-a: 1 call(s), 90 + 10 tokens, replayed"));
    assert_eq!(page.matches("class=\"meta judge\"").count(), 4);
    // A run without judges has no judge section.
    let plain = run("live", vec![case("s", "a", "m", "pass", json!(null))]);
    assert!(!markdown(&plain, None).contains("## Judge calls"));
    assert!(!html(&plain, None).contains("<table id=judge-table>"));
}

/// A perf case: `prompt` tokens at `conc` concurrent requests, TTFT median `ttft` ms.
fn perf_case(id: &str, prompt: u32, conc: u32, ttft: f64, server: bool) -> CaseResult {
    let mut c = case("tiny-latency", id, "m", "pass", json!(null));
    let d = |m: f64| json!({"n": 8, "mean": m, "median": m, "p90": m * 1.5, "p95": m * 1.6, "p99": m * 2.0});
    let mut p = json!({
        "prompt_tokens_target": prompt, "concurrency": conc, "burstiness": 1.0, "prompts": "random",
        "requests": 8, "completed": 8, "failed": 0, "timed_out": 0, "duration_s": 2.0,
        "peak_in_flight": conc, "prompt_tokens_mean": prompt as f64, "output_tokens_mean": 32.0,
        "input_tokens_total": 8 * prompt, "output_tokens_total": 256,
        "ttft_ms": d(ttft), "ttfa_ms": d(ttft), "tpot_ms": d(2.5), "itl_ms": d(2.4), "e2e_ms": d(ttft + 80.0),
        "output_tokens_per_s": 128.0, "total_tokens_per_s": 640.0, "requests_per_s": 4.0,
        "resources": {"llmtest_peak_rss_mib": 61.0 + conc as f64},
    });
    if server {
        p["server_prompt_ms"] = d(ttft - 3.0);
        p["server_tpot_ms"] = d(2.4);
    }
    c.perf = Some(serde_json::from_value(p).unwrap());
    c
}

#[test]
fn reports_show_perf_suites_latency_tables() {
    let mut r = run(
        "live",
        vec![
            perf_case("p512-c4", 512, 4, 40.0, false),
            perf_case("p128-c1", 128, 1, 10.0, true),
        ],
    );
    r.models = vec![
        serde_json::from_value(json!({
            "name": "m", "backend": "openai", "facts": {"server_time_to_ready_s": 1.25}
        }))
        .unwrap(),
    ];
    let md = markdown(&r, None);
    let sec = &md[md
        .find("## Perf suites (live load runs)")
        .expect("perf section")..];
    // Rows in prompt length × load order, whatever the case order.
    let a = sec
        .find("| 128 (128 sent) | concurrency 1 | 8 | 0 | 10.0 / 15.0 / 20.0 | 2.50 / 3.75 | 2.40 | 90.0 / 180 | 128 | 4.00 | — | ✅ |")
        .unwrap_or_else(|| panic!("{sec}"));
    let b = sec
        .find("| 512 (512 sent) | concurrency 4 | 8 | 0 | 40.0 / 60.0 / 80.0 |")
        .unwrap_or_else(|| panic!("{sec}"));
    assert!(a < b, "{sec}");
    assert!(
        sec.contains("| 128 | 1 | 10.0 | 7.00 | 2.50 | 2.40 |"),
        "server timings: {sec}"
    );
    assert!(
        sec.contains("server ready in 1.25 s; llmtest process peak RSS 65.0 MiB."),
        "{sec}"
    );
    let page = html(&r, None);
    let sec = &page[page.find("<h2 id=perf>").expect("perf section")..];
    let sec = &sec[..sec.find("<h2 id=cases-title>").unwrap()];
    assert!(sec.contains("<h3>tiny-latency on m</h3>"), "{sec}");
    assert!(
        sec.contains("<tr><td>128 (128 sent)</td><td>concurrency 1</td><td>8</td><td>0</td><td>10.0 / 15.0 / 20.0</td>"),
        "{sec}"
    );
    assert!(
        sec.contains(
            "<tr><td>128</td><td>1</td><td>10.0</td><td>7.00</td><td>2.50</td><td>2.40</td></tr>"
        ),
        "{sec}"
    );
    assert_eq!(sec.matches("<table class=").count(), 2, "{sec}");
    // No perf case, no perf section.
    let plain = run("live", vec![case("s", "a", "m", "pass", json!(null))]);
    assert!(!markdown(&plain, None).contains("## Perf suites"));
    assert!(!html(&plain, None).contains("<h2 id=perf>"));
}
