//! The LeetCode-style suite: reference answers (in the shapes models write them) pass every
//! case with the composite score 0.6 × correct + 0.4 × review (a stand-in review judge); the seed's broken two-sum
//! (right pairs, not de-duplicated or sorted) fails with expected vs got.

mod common;

use llmtest_grade::judge::{Judge, JudgeCall, JudgeFailure, JudgeReply};
use llmtest_grade::{Outcome, Sample, grade_sample};
use llmtest_spec::Case;

/// Stands in for the review judge (the judge itself is tested against real servers in
/// llmtest-cli): 5/5 for code with a comment or docstring, 1/5 without, so the composite
/// arithmetic is checkable.
#[derive(Debug)]
struct CommentReview;

impl Judge for CommentReview {
    fn ask(&self, call: &JudgeCall) -> Result<JudgeReply, JudgeFailure> {
        let user = &call.messages[1].content;
        let answer = user
            .split("[Answer]")
            .nth(1)
            .and_then(|a| a.split("[Rubric]").next())
            .unwrap_or_default();
        let score = if answer.contains('#') || answer.contains("\"\"\"") {
            5
        } else {
            1
        };
        Ok(JudgeReply {
            model: "comment-review".into(),
            texts: vec![format!(r#"{{"reason": "r", "score": {score}}}"#); call.n as usize],
        })
    }
    fn answer_of(&self, model: &str) -> Result<String, JudgeFailure> {
        Err(JudgeFailure(format!("no answers of `{model}` here")))
    }
}

fn verdict(case: &Case, answer: &str) -> llmtest_grade::Verdict {
    let reg = common::registry();
    let graders: Vec<_> = case
        .expect
        .iter()
        .map(|a| (a.clone(), reg.build(a).expect("builds")))
        .collect();
    let sample = Sample {
        judge: Some(&CommentReview),
        ..Sample::of_answer("leetcode", "test", case, answer)
    };
    grade_sample(&graders, &sample, case.threshold, false)
}

#[test]
fn reference_answers_pass_every_case() {
    if !common::have("python3") {
        return;
    }
    let suite = common::load("suites/code/leetcode.yaml");
    let answers = common::answers("leetcode-reference.jsonl");
    assert!(suite.cases.len() >= 10, "{}", suite.cases.len());
    let mut failed = Vec::new();
    for case in &suite.cases {
        let answer = answers
            .get(&case.id)
            .unwrap_or_else(|| panic!("no reference answer for {}", case.id));
        let v = verdict(case, answer);
        if v.outcome != Outcome::Pass || (v.score - 1.0).abs() > 1e-9 {
            failed.push(format!(
                "{}: {:?} {:.2} {:?}",
                case.id,
                v.outcome,
                v.score,
                v.assertions.iter().map(|a| &a.found).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn composite_score_and_the_unsorted_two_sum() {
    if !common::have("python3") {
        return;
    }
    let suite = common::load("suites/code/leetcode.yaml");
    let case = suite
        .cases
        .iter()
        .find(|c| c.id == "two-sum-unique-pairs")
        .expect("two-sum case");
    // The seed's wrong model: finds the pairs but neither de-duplicates nor sorts them.
    let unsorted = "```python\n# collect pairs\ndef two_sum_unique_pairs(nums, target):\n    out = []\n    for i in range(len(nums)):\n        for j in range(len(nums)):\n            if i != j and nums[i] + nums[j] == target:\n                out.append([min(i, j), max(i, j)])\n    return out\n```";
    let v = verdict(case, unsorted);
    assert_eq!(v.outcome, Outcome::Fail);
    let code = v.assertions.iter().find(|a| a.kind == "code").unwrap();
    assert!(!code.pass);
    assert_eq!(code.outcome, None, "a wrong answer is a plain failure");
    assert!(
        code.found
            .contains("returned [[0, 1], [0, 1], [1, 3], [1, 3]], expected [[0, 1], [1, 3]]"),
        "{}",
        code.found
    );
    assert_eq!(code.score, 0.0, "partial_credit: false");
    // Review passes (it is commented): 0.6 × 0 + 0.4 × 1.
    assert!((v.score - 0.4).abs() < 1e-9, "{}", v.score);

    // Correct but undocumented: passes (correctness decides), composite 0.6.
    let bare = "```python\ndef two_sum_unique_pairs(nums, target):\n    return sorted({(i, j) for i in range(len(nums)) for j in range(i + 1, len(nums)) if nums[i] + nums[j] == target})\n```";
    let v = verdict(case, bare);
    assert_eq!(v.outcome, Outcome::Pass);
    assert!((v.score - 0.6).abs() < 1e-9, "{}", v.score);
}
