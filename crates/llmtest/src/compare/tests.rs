use serde_json::json;

use super::*;

/// A case result as `llmtest run` writes it: `samples` generations, `passed` of them right.
fn case(suite: &str, id: &str, model: &str, passed: usize, samples: usize) -> CaseResult {
    let sample = |i: usize| {
        let ok = i < passed;
        json!({
            "index": i, "outcome": if ok { "pass" } else { "fail" }, "score": if ok { 1.0 } else { 0.0 },
            "answer": if ok { format!("{id} = 42") } else { format!("{id} = 41") },
            "output": "", "reasoning_chars": 0, "reasoning_status": "none",
            "extracted": if ok { "42" } else { "41" },
            "assertions": [{"type": "number", "pass": ok, "score": if ok { 1.0 } else { 0.0 },
                            "weight": 1.0, "expected": "42", "found": if ok { "42" } else { "41" }}]
        })
    };
    let outcome = if passed == samples { "pass" } else { "fail" };
    serde_json::from_value(json!({
        "suite": suite, "case": id, "model": model, "outcome": outcome,
        "score": passed as f64 / samples as f64, "weight": 1.0,
        "samples": (0..samples).map(sample).collect::<Vec<_>>()
    }))
    .unwrap()
}

fn side<'a>(model: &str, cases: &'a [CaseResult]) -> Side<'a> {
    Side {
        model: model.into(),
        file: None,
        profile: None,
        cases: cases.iter().filter(|c| c.model == model).collect(),
    }
}

/// `both` cases passed by both, `worse` lost by the candidate, `better` won, `neither` failed by both.
fn table(both: usize, worse: usize, better: usize, neither: usize) -> Vec<CaseResult> {
    let mut v = Vec::new();
    let mut n = 0;
    for (count, b, c) in [(both, 1, 1), (worse, 1, 0), (better, 0, 1), (neither, 0, 0)] {
        for _ in 0..count {
            let id = format!("c{n:04}");
            v.push(case("s", &id, "base", b, 1));
            v.push(case("s", &id, "cand", c, 1));
            n += 1;
        }
    }
    v
}

fn run(cases: &[CaseResult]) -> Comparison {
    compare(&side("base", cases), &side("cand", cases), DEFAULT_ALPHA).unwrap()
}

#[test]
fn regression_lists_lost_cases_first_with_both_answers() {
    // The committed fixture's table: 11 both, 8 lost, 1 won, 1 neither → p = 20/512.
    let cases = table(11, 8, 1, 1);
    let c = run(&cases);
    assert_eq!((c.paired, c.worse, c.better), (21, 8, 1));
    assert!((c.p_value - 0.0390625).abs() < 1e-12, "{}", c.p_value);
    assert_eq!(c.verdict, Verdict::Regression);
    assert_eq!(c.test, Test::McnemarExact);
    assert_eq!(c.exit_code(), 1);
    assert_eq!(c.flips.len(), 9);
    assert!(c.flips[..8].iter().all(|f| f.direction == Direction::Worse));
    assert_eq!(c.flips[8].direction, Direction::Better);
    let f = &c.flips[0];
    assert_eq!((f.suite.as_str(), f.case.as_str()), ("s", "c0011"));
    assert_eq!(f.baseline.outcome, Outcome::Pass);
    assert_eq!(f.candidate.outcome, Outcome::Fail);
    assert_eq!(f.baseline.answer, "c0011 = 42");
    assert_eq!(f.candidate.assertions[0].found, "41");
    assert!(!f.candidate.assertions[0].pass);
    assert_eq!((c.baseline.passed, c.baseline.samples), (19, 21));
    assert_eq!((c.candidate.passed, c.candidate.samples), (12, 21));
    assert!((c.drop - 7.0 / 21.0).abs() < 1e-12);
    let (lo, hi) = crate::stats::wilson(19, 21, Z95);
    assert_eq!((c.baseline.ci_low, c.baseline.ci_high), (lo, hi));
    // max_drop decides whether the trial fails; an improvement never fails.
    assert!(c.fails(0.0) && c.fails(0.3) && !c.fails(0.34));
    let back = compare(&side("cand", &cases), &side("base", &cases), 0.05).unwrap();
    assert_eq!(back.verdict, Verdict::Improvement);
    assert!(!back.fails(0.0));
    assert_eq!(back.exit_code(), 0);
}

#[test]
fn no_discordant_pair_is_no_change_and_one_way_needs_six() {
    let c = run(&table(30, 0, 0, 5));
    assert_eq!((c.p_value, c.verdict), (1.0, Verdict::NoSignificantChange));
    assert!(c.flips.is_empty());
    let c = run(&table(30, 5, 0, 5));
    assert_eq!(c.verdict, Verdict::NoSignificantChange, "p = {}", c.p_value);
    let c = run(&table(30, 6, 0, 5));
    assert_eq!(c.verdict, Verdict::Regression, "p = {}", c.p_value);
    // A stricter α turns the same table into noise.
    let cases = table(30, 6, 0, 5);
    let strict = compare(&side("base", &cases), &side("cand", &cases), 0.01).unwrap();
    assert_eq!(strict.verdict, Verdict::NoSignificantChange);
}

#[test]
fn several_samples_use_the_sign_test_on_per_case_rates() {
    // 4 samples per case: the candidate is lower on 7 cases, higher on 1, equal on 2.
    let mut v = Vec::new();
    for (i, (b, c)) in [
        (4, 2),
        (4, 3),
        (3, 1),
        (4, 0),
        (2, 1),
        (4, 2),
        (3, 2),
        (1, 3),
        (4, 4),
        (2, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("c{i}");
        v.push(case("s", &id, "base", b, 4));
        v.push(case("s", &id, "cand", c, 4));
    }
    let c = run(&v);
    assert_eq!(c.test, Test::SignTest);
    assert_eq!((c.worse, c.better), (7, 1));
    assert!((c.p_value - 2.0 * 9.0 / 256.0).abs() < 1e-12);
    assert_eq!(c.verdict, Verdict::NoSignificantChange);
    assert_eq!((c.baseline.passed, c.baseline.samples), (31, 40));
    assert!((c.baseline.pass_rate - 31.0 / 40.0).abs() < 1e-12);
    let flip = c.flips.iter().find(|f| f.case == "c3").unwrap();
    assert_eq!((flip.candidate.passed, flip.candidate.samples), (0, 4));
    let md = markdown(&c);
    assert!(md.contains("### 🔻 lower pass rate (7)"), "{md}");
    assert!(md.contains("candidate (fail, 0/4 samples)"), "{md}");
}

#[test]
fn infrastructure_errors_and_skips_are_left_out_not_counted() {
    let mut v = table(5, 2, 0, 0);
    v[1] = serde_json::from_value(json!({
        "suite": "s", "case": "c0000", "model": "cand", "outcome": "infra_error",
        "score": 0.0, "weight": 1.0, "samples": [],
        "error": {"kind": "timeout", "message": "no answer in 30 s"}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let c = run(&v);
    assert_eq!(c.paired, 6);
    assert_eq!(c.excluded.len(), 1);
    assert!(c.excluded[0].is_infra());
    assert_eq!(c.candidate.passed, 4);
    assert!(markdown(&c).contains("1 of them infrastructure errors (not the model)"));
}

#[test]
fn mismatched_sides_are_bad_input_naming_the_cases() {
    let mut v = table(3, 0, 0, 0);
    v.push(case("s", "extra", "base", 1, 1));
    v.push(case("t", "other", "cand", 1, 1));
    let e = compare(&side("base", &v), &side("cand", &v), 0.05).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("only in the baseline: s::extra")
            && msg.contains("only in the candidate: t::other"),
        "{msg}"
    );
    // The same case expecting another answer: the suite changed between the runs.
    let mut v = table(3, 0, 0, 0);
    let mut changed = case("s", "c0001", "cand", 1, 1);
    changed.samples[0].assertions[0].expected = "43".into();
    v[3] = changed;
    let e = compare(&side("base", &v), &side("cand", &v), 0.05).unwrap_err();
    assert!(e.to_string().contains("s::c0001"), "{e}");
    let e = compare(&side("base", &v), &side("cand", &v), 1.5).unwrap_err();
    assert!(matches!(e, CompareError::Alpha(_)));
}

#[test]
fn markdown_puts_flips_first_then_rates_test_and_verdict() {
    let c = run(&table(11, 8, 1, 1));
    let md = markdown(&c);
    let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("no {s:?} in\n{md}"));
    assert!(at("### 🔻 pass → fail (8)") < at("### 🔺 fail → pass (1)"));
    assert!(at("### 🔺 fail → pass (1)") < at("### Pass rates"));
    assert!(at("| baseline | base | 19/21 | 90.5% |") < at("Exact McNemar test"));
    assert!(md.contains("two-sided p = 0.039."), "{md}");
    assert!(
        md.contains("**Verdict: 🔻 regression** at α = 0.05"),
        "{md}"
    );
    assert!(
        md.contains("    - ✗ number: expected `42`; found `41`"),
        "{md}"
    );
    let j: serde_json::Value = serde_json::from_str(&json(&c)).unwrap();
    assert_eq!(j["schema_version"], COMPARE_SCHEMA_VERSION);
    assert_eq!(j["verdict"], "regression");
    assert_eq!(j["test"], "mcnemar_exact");
    assert_eq!(j["flips"].as_array().unwrap().len(), 9);
    assert_eq!(j["flips"][0]["direction"], "worse");
}

#[test]
fn several_suites_get_a_row_each_and_one_pooled_test() {
    let mut v = table(10, 6, 0, 0);
    for c in v.iter_mut().skip(10) {
        c.suite = "t".into();
    }
    let c = run(&v);
    assert_eq!((c.worse, c.better), (6, 0));
    assert_eq!(c.by_suite.len(), 2);
    // Results 10.. (cases c0005–c0015, both models) move to suite `t`: 5 passed by both
    // and the 6 the candidate lost; `s` keeps 5 passed by both.
    let row = |name: &str| c.by_suite.iter().find(|r| r.suite == name).unwrap();
    assert_eq!(
        (row("s").paired, row("s").worse, row("s").p_value),
        (5, 0, 1.0)
    );
    assert_eq!((row("t").paired, row("t").worse), (11, 6));
    assert!((row("t").p_value - 2.0 / 64.0).abs() < 1e-12);
    assert!((row("t").candidate_rate - 5.0 / 11.0).abs() < 1e-12);
    assert!(markdown(&c).contains("| suite | cases | baseline | candidate | worse | better | p |"));
}
