//! The judge graders against a scripted judge: what they ask, how they read the answers.

use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::{GraderRegistry, Verdict as CaseVerdict, grade_sample};
use llmtest_spec::{AssertionSpec, Case, Loc};

/// Answers each call with the next scripted texts; records what was asked.
#[derive(Debug, Default)]
struct Scripted {
    replies: Mutex<Vec<Result<Vec<String>, String>>>,
    asked: Mutex<Vec<JudgeCall>>,
    other: Option<String>,
}

impl Scripted {
    fn new(replies: Vec<Result<Vec<&str>, &str>>) -> Scripted {
        Scripted {
            replies: Mutex::new(
                replies
                    .into_iter()
                    .rev()
                    .map(|r| {
                        r.map(|v| v.into_iter().map(String::from).collect())
                            .map_err(String::from)
                    })
                    .collect(),
            ),
            ..Scripted::default()
        }
    }
    fn users(&self) -> Vec<String> {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.messages[1].content.clone())
            .collect()
    }
}

impl Judge for Scripted {
    fn ask(&self, call: &JudgeCall) -> Result<JudgeReply, JudgeFailure> {
        self.asked.lock().unwrap().push(call.clone());
        match self
            .replies
            .lock()
            .unwrap()
            .pop()
            .expect("a scripted reply")
        {
            Ok(texts) => Ok(JudgeReply {
                model: "judge-model".into(),
                texts,
            }),
            Err(e) => Err(JudgeFailure(e)),
        }
    }
    fn answer_of(&self, model: &str) -> Result<String, JudgeFailure> {
        self.other
            .clone()
            .ok_or_else(|| JudgeFailure(format!("`{model}` did not answer")))
    }
}

fn case() -> Case {
    crate::test_case("What is the capital of France?", GenParams::default())
}

fn spec(a: Value) -> AssertionSpec {
    let mut m = a.as_object().unwrap().clone();
    let kind = m.remove("type").unwrap().as_str().unwrap().to_owned();
    AssertionSpec {
        kind,
        negate: false,
        weight: 1.0,
        params: m,
        loc: Loc::new("s.yaml", 1, 1),
    }
}

fn grade(a: Value, judge: &Scripted, answer: &str) -> CaseVerdict {
    let spec = spec(a);
    let g = GraderRegistry::with_builtins(GraderContext::default())
        .build(&spec)
        .unwrap();
    let c = case();
    let s = Sample {
        judge: Some(judge),
        ..Sample::of_answer("s", "m", &c, answer)
    };
    grade_sample(&[(spec, g)], &s, None, false)
}

#[test]
fn rubric_scores_map_to_0_1_and_the_prompt_holds_the_parts() {
    let j = Scripted::new(vec![Ok(vec![r#"{"reason": "clear", "score": 4}"#])]);
    let v = grade(
        json!({"type": "rubric", "rubric": "Names the city."}),
        &j,
        "Paris.",
    );
    assert_eq!(v.outcome, Outcome::Pass);
    assert!((v.score - 0.75).abs() < 1e-12, "4 of 1–5 is 0.75");
    let user = &j.users()[0];
    for part in [
        "What is the capital of France?",
        "Paris.",
        "Names the city.",
        "1 (poor) to 5",
    ] {
        assert!(user.contains(part), "{part} in {user}");
    }
    let asked = j.asked.lock().unwrap()[0].clone();
    assert_eq!(asked.schema["properties"]["score"]["maximum"], 5);
    assert_eq!(asked.n, 1);

    let j = Scripted::new(vec![Ok(vec![r#"{"reason": "wrong city", "score": 2}"#])]);
    let v = grade(
        json!({"type": "rubric", "rubric": "r", "scale": "0-10"}),
        &j,
        "Lyon",
    );
    assert_eq!(v.outcome, Outcome::Fail);
    assert!((v.score - 0.2).abs() < 1e-12);
    let j = Scripted::new(vec![Ok(vec![r#"{"reason": "x", "pass": true}"#])]);
    let v = grade(
        json!({"type": "rubric", "rubric": "r", "scale": "pass-fail"}),
        &j,
        "Paris",
    );
    assert_eq!(v.outcome, Outcome::Pass);
}

#[test]
fn unreadable_or_failed_judges_are_judge_errors_not_zero_scores() {
    for reply in [
        Ok(vec!["I like it."]),
        Ok(vec![r#"{"reason": "great", "score": 9}"#]),
        Ok(vec![r#"{"reason": "#]),
        Ok(vec![]),
        Err("HTTP 503 after 3 attempts"),
    ] {
        let j = Scripted::new(vec![reply.clone()]);
        let v = grade(json!({"type": "rubric", "rubric": "r"}), &j, "Paris");
        assert_eq!(
            v.outcome,
            Outcome::JudgeError,
            "{reply:?}: {:?}",
            v.assertions[0]
        );
        assert!(!v.outcome.is_model_failure() && v.outcome.is_infra());
    }
    // No judge at all (a runner without one).
    let spec = spec(json!({"type": "closed-qa", "criterion": "c"}));
    let g = GraderRegistry::with_builtins(GraderContext::default())
        .build(&spec)
        .unwrap();
    let c = case();
    let v = grade_sample(
        &[(spec, g)],
        &Sample::of_answer("s", "m", &c, "x"),
        None,
        false,
    );
    assert_eq!(v.outcome, Outcome::JudgeError);
}

#[test]
fn repeated_verdicts_report_spread_and_straddling_is_unstable() {
    let a = json!({"type": "rubric", "rubric": "r", "judge_samples": 3});
    let j = Scripted::new(vec![Ok(vec![
        r#"{"reason": "a", "score": 5}"#,
        r#"{"reason": "b", "score": 4}"#,
        r#"{"reason": "c", "score": 5}"#,
    ])]);
    let v = grade(a.clone(), &j, "Paris");
    assert_eq!(v.outcome, Outcome::Pass);
    assert_eq!(j.asked.lock().unwrap()[0].n, 3);
    let d = v.assertions[0].detail.clone().unwrap();
    assert!((d["mean"].as_f64().unwrap() - (1.0 + 0.75 + 1.0) / 3.0).abs() < 1e-12);
    assert_eq!(d["min"], 0.75);

    // 5, 1, 5: the mean (0.67) passes, but one verdict fails: unstable, not a pass.
    let j = Scripted::new(vec![Ok(vec![
        r#"{"reason": "a", "score": 5}"#,
        r#"{"reason": "b", "score": 1}"#,
        r#"{"reason": "c", "score": 5}"#,
    ])]);
    let v = grade(a.clone(), &j, "Paris");
    assert_eq!(v.outcome, Outcome::Unstable);
    assert!(v.assertions[0].found.contains("unstable"));
    // All below: a plain fail.
    let j = Scripted::new(vec![Ok(vec![
        r#"{"score": 1, "reason": ""}"#,
        r#"{"score": 2, "reason": ""}"#,
        r#"{"score": 1, "reason": ""}"#,
    ])]);
    assert_eq!(grade(a, &j, "Paris").outcome, Outcome::Fail);
}

#[test]
fn pairwise_asks_both_orders_and_disagreement_is_a_tie() {
    let a = json!({"type": "pairwise", "against": "other-model"});
    let win = r#"{"reason": "x", "winner": "A"}"#;
    let lose = r#"{"reason": "x", "winner": "B"}"#;
    let run = |first: &str, second: &str| {
        let mut j = Scripted::new(vec![Ok(vec![first]), Ok(vec![second])]);
        j.other = Some("Lyon".into());
        let v = grade(a.clone(), &j, "Paris");
        (v, j.users())
    };
    // A in order 1 and B in order 2 are both the candidate: a win.
    let (v, users) = run(win, lose);
    assert_eq!(v.score, 1.0);
    assert_eq!(v.outcome, Outcome::Pass);
    let pos = |u: &str, t: &str| u.find(t).unwrap();
    assert!(
        pos(&users[0], "Paris") < pos(&users[0], "Lyon"),
        "candidate first"
    );
    assert!(
        pos(&users[1], "Lyon") < pos(&users[1], "Paris"),
        "then swapped"
    );
    // The judge always picks the first position: position bias, cancelled into a tie.
    let (v, _) = run(win, win);
    assert_eq!(v.score, 0.5);
    assert!(v.assertions[0].found.contains("orders disagree"));
    assert_eq!(v.outcome, Outcome::Pass, "a tie is not worse");
    // Loses in both orders.
    let (v, _) = run(lose, win);
    assert_eq!(v.score, 0.0);
    assert_eq!(v.outcome, Outcome::Fail);
    // The other model has no answer: the judge cannot compare.
    let j = Scripted::new(vec![]);
    assert_eq!(grade(a, &j, "Paris").outcome, Outcome::JudgeError);
}

#[test]
fn closed_qa_and_factuality_choices() {
    let j = Scripted::new(vec![Ok(vec![r#"{"reason": "r", "verdict": "N"}"#])]);
    let v = grade(
        json!({"type": "closed-qa", "criterion": "names a city"}),
        &j,
        "blue",
    );
    assert_eq!(v.outcome, Outcome::Fail);
    for (choice, pass) in [
        ("A", true),
        ("B", true),
        ("C", true),
        ("D", false),
        ("E", true),
    ] {
        let text = format!(r#"{{"reason": "r", "choice": "{choice}"}}"#);
        let j = Scripted::new(vec![Ok(vec![text.as_str()])]);
        let v = grade(
            json!({"type": "factuality", "reference": "Paris"}),
            &j,
            "Paris",
        );
        assert_eq!(v.outcome == Outcome::Pass, pass, "{choice}");
        assert!(j.users()[0].contains("[Expert answer]\nParis"));
    }
    let j = Scripted::new(vec![Ok(vec![r#"{"reason": "r", "choice": "A"}"#])]);
    let v = grade(
        json!({"type": "factuality", "reference": "Paris", "accept": ["C"]}),
        &j,
        "Paris",
    );
    assert_eq!(v.outcome, Outcome::Fail);
}

#[test]
fn templates_and_parameters_are_checked_at_load() {
    let r = GraderRegistry::with_builtins(GraderContext::default());
    for a in [
        json!({"type": "rubric"}),
        json!({"type": "rubric", "rubric": "r", "scale": "1-10"}),
        json!({"type": "rubric", "rubric": "r", "criterion": "c"}),
        json!({"type": "rubric", "rubric": "r", "template": "Grade {{ answer }}"}),
        json!({"type": "rubric", "rubric": "r", "judge_samples": 0}),
        json!({"type": "pairwise", "against": "m", "template": "{answer}"}),
        json!({"type": "factuality", "reference": "x", "accept": ["F"]}),
        json!({"type": "closed-qa"}),
        json!({"type": "closed-qa", "criterion": "c", "thresold": 0.5}),
        json!({"type": "closed-qa", "criterion": "c", "structured": "xml"}),
    ] {
        assert!(r.build(&spec(a.clone())).is_err(), "{a}");
    }
    let j = Scripted::new(vec![Ok(vec!["Score: 5"])]);
    let v = grade(
        json!({"type": "rubric", "rubric": "r", "template": "Rate {answer} by {rubric}", "system": "S"}),
        &j,
        "Paris",
    );
    assert_eq!(v.outcome, Outcome::Pass);
    assert_eq!(j.users()[0], "Rate Paris by r");
    assert_eq!(
        j.asked.lock().unwrap()[0].structured,
        Structured::JsonSchema
    );
    assert_eq!(j.asked.lock().unwrap()[0].messages[0].content, "S");
    let j = Scripted::new(vec![Ok(vec!["Verdict: Y"])]);
    let a = json!({"type": "closed-qa", "criterion": "c", "structured": "none"});
    assert_eq!(grade(a, &j, "Paris").outcome, Outcome::Pass);
    assert_eq!(j.asked.lock().unwrap()[0].structured, Structured::None);
}

#[test]
fn a_judge_error_is_not_hidden_by_a_met_threshold() {
    // The leetcode shape: 0.6 for the answer itself, 0.4 for the review, threshold 0.6.
    let r = GraderRegistry::with_builtins(GraderContext::default());
    let mut contains = spec(json!({"type": "contains", "value": "Paris"}));
    contains.weight = 0.6;
    let mut review = spec(json!({"type": "rubric", "rubric": "r"}));
    review.weight = 0.4;
    let graders = vec![
        (contains.clone(), r.build(&contains).unwrap()),
        (review.clone(), r.build(&review).unwrap()),
    ];
    let c = case();
    let run = |reply: &str| {
        let j = Scripted::new(vec![Ok(vec![reply])]);
        let s = Sample {
            judge: Some(&j),
            ..Sample::of_answer("s", "m", &c, "Paris")
        };
        grade_sample(&graders, &s, Some(0.6), false)
    };
    let v = run(r#"{"reason": "terse", "score": 1}"#);
    assert_eq!(
        v.outcome,
        Outcome::Pass,
        "a poor review does not fail the case"
    );
    assert!((v.score - 0.6).abs() < 1e-12);
    let v = run("no verdict here");
    assert_eq!(
        v.outcome,
        Outcome::JudgeError,
        "the review's zero is not a score"
    );
}
