//! Shared by the integration tests: build a `code` grader and grade an answer with it.
#![allow(dead_code)]

use std::sync::Arc;

use serde_json::{Map, Value};

use llmtest_grade::{Grade, Grader, GraderContext, Sample};
use llmtest_spec::{Case, GenParams, Loc, Message, Prompt, Role};

pub fn grader(params: Value) -> Arc<dyn Grader> {
    let f = &llmtest_code::factories()[0];
    assert_eq!(f.kind(), "code");
    let Value::Object(map) = params else {
        panic!("params must be an object")
    };
    match f.build(&map, &GraderContext::default()) {
        Ok(g) => g,
        Err(e) => panic!("invalid params: {} ({:?})", e.message, e.hint),
    }
}

pub fn chat_case(id: &str) -> Case {
    case(
        id,
        Prompt::Chat(vec![Message {
            role: Role::User,
            content: "write the function".into(),
        }]),
    )
}

pub fn case(id: &str, prompt: Prompt) -> Case {
    Case {
        id: id.into(),
        prompt,
        vars: Map::new(),
        expect: Vec::new(),
        weight: 1.0,
        threshold: None,
        samples: 1,
        tags: Vec::new(),
        params: GenParams::default(),
        loc: Loc::new("suites/test.yaml", 1, 1),
    }
}

pub fn grade_with(g: &dyn Grader, case: &Case, answer: &str) -> Grade {
    let sample = Sample::of_answer("test", "test", case, answer);
    g.grade(&sample)
}

pub fn grade(params: Value, answer: &str) -> Grade {
    grade_with(&*grader(params), &chat_case("c"), answer)
}

pub fn kind(g: &Grade) -> &str {
    g.detail
        .as_ref()
        .and_then(|d| d.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Python 3 on the sandbox PATH, or a skip (a failure under LLMTEST_REQUIRE_EXTERNAL=1).
pub fn have(program: &str) -> bool {
    let found = llmtest_code::SANDBOX_PATH
        .split(':')
        .any(|d| std::path::Path::new(d).join(program).is_file());
    if !found {
        if std::env::var("LLMTEST_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
            panic!(
                "`{program}` is not on the sandbox PATH ({}) and LLMTEST_REQUIRE_EXTERNAL=1",
                llmtest_code::SANDBOX_PATH
            );
        }
        eprintln!(
            "skipped: `{program}` is not on the sandbox PATH ({})",
            llmtest_code::SANDBOX_PATH
        );
    }
    found
}

pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A registry with this crate's `code` assertion and the built-in text assertions.
pub fn registry() -> llmtest_grade::GraderRegistry {
    let mut r = llmtest_grade::GraderRegistry::with_builtins(GraderContext { root: root() });
    for f in llmtest_code::factories() {
        r.register(f);
    }
    r
}

/// Loads one suite file (relative to the repo root) without the project's llmtest.yaml.
pub fn load(file: &str) -> llmtest_spec::Suite {
    use std::path::PathBuf;
    let project = llmtest_spec::Project::bare(&root());
    let mut suites = llmtest_spec::load_suites(&project, &[PathBuf::from(file)], &registry())
        .unwrap_or_else(|d| panic!("{file}: {d}"));
    suites.remove(0)
}

/// An answer set from fixtures/outputs: case id → answer.
pub fn answers(name: &str) -> std::collections::HashMap<String, String> {
    let text =
        std::fs::read_to_string(root().join("fixtures/outputs").join(name)).expect("answer set");
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            (
                v["case"].as_str().unwrap().to_owned(),
                v["output"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
