//! The repo's suites that use `number` and `math` load with the real loader, and their golds
//! are gradable: the GSM8K reference solutions pass their own cases and a wrong final answer
//! fails; each table-QA gold restated with its unit passes and the same figure with a wrong
//! magnitude fails.

use std::path::{Path, PathBuf};

use llmtest_grade::{GraderContext, GraderRegistry, Sample};
use llmtest_spec::{Case, Project, Suite, load_suites};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(file: &str) -> (Suite, GraderRegistry) {
    let root = root();
    let project = Project::load(&root).unwrap_or_else(|e| panic!("llmtest.yaml: {e:?}"));
    let registry = GraderRegistry::with_builtins(GraderContext { root: root.clone() });
    let mut suites = load_suites(&project, &[PathBuf::from(file)], &registry)
        .unwrap_or_else(|e| panic!("{file}: {e:?}"));
    assert_eq!(suites.len(), 1);
    (suites.remove(0), registry)
}

fn sample<'a>(suite: &'a str, case: &'a Case, answer: &'a str) -> Sample<'a> {
    Sample {
        suite,
        model: "fixture",
        case,
        index: 0,
        output: answer,
        answer,
        reasoning: None,
        tool_calls: &[],
        judge: None,
    }
}

#[test]
fn gsm8k_reference_solutions_pass_and_wrong_answers_fail() {
    let (suite, registry) = load("suites/gsm8k.yaml");
    assert_eq!(suite.cases.len(), 1319, "the whole GSM8K test set");
    for case in &suite.cases {
        assert_eq!(case.expect.len(), 1, "{}", case.id);
        let grader = registry
            .build(&case.expect[0])
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.id));
        let reference = case.vars["answer"].as_str().expect("answer field");
        let g = grader.grade(&sample(&suite.name, case, reference));
        assert!(
            g.pass,
            "{}: the reference solution should pass: {}",
            case.id, g.found
        );
        let target: f64 = case.vars["target"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{}: numeric target", case.id));
        let wrong = format!(
            "{reference}\nWait, I made an error. The answer is {}.",
            target + 1.0
        );
        let g = grader.grade(&sample(&suite.name, case, &wrong));
        assert!(
            !g.pass,
            "{}: a wrong final answer should fail: {}",
            case.id, g.found
        );
    }
}

#[test]
fn table_qa_golds_restated_pass_and_magnitude_errors_fail() {
    let (suite, registry) = load("suites/table-qa-zh.yaml");
    assert!(suite.cases.len() >= 20, "{} cases", suite.cases.len());
    for case in &suite.cases {
        let a = &case.expect[0];
        assert_eq!(a.kind, "number", "{}", case.id);
        let grader = registry
            .build(a)
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.id));
        let value = a.params["value"].as_f64().expect("numeric value");
        let unit = a.params.get("unit").and_then(Value::as_str).unwrap_or("");
        let right = format!("答案是{value}{unit}。");
        let g = grader.grade(&sample(&suite.name, case, &right));
        assert!(g.pass, "{}: {right} should pass: {}", case.id, g.found);
        let wrong = format!("答案是{}{unit}。", value * 10.0);
        let g = grader.grade(&sample(&suite.name, case, &wrong));
        assert!(!g.pass, "{}: {wrong} should fail: {}", case.id, g.found);
    }
}
