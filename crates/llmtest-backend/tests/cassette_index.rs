//! Replay reads a cassette's keys only and decodes the one entry a request needs (a one-trial
//! process under nextest): entries are still found whatever their field order, and a broken
//! entry is an error naming its file and line when it is replayed.

use llmtest_backend::{Backend, Choice, InfraKind, ReplayBackend, Request, Response, cassette_key};
use llmtest_spec::{GenParams, Prompt};

fn req(case: &str) -> Request {
    Request {
        model: "m".into(),
        suite: "s".into(),
        case_id: case.into(),
        prompt: Prompt::Completion(format!("prompt of {case}")),
        params: GenParams::default(),
        n: 1,
    }
}

fn line(r: &Request, answer: &str) -> String {
    serde_json::json!({
        "key": cassette_key(r),
        "suite": r.suite,
        "case_id": r.case_id,
        "request": r,
        "response": Response { choices: vec![Choice::text(answer)], ..Response::default() },
    })
    .to_string()
}

#[tokio::test]
async fn entries_are_found_by_key_and_decoded_when_replayed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("m")).unwrap();
    let (a, b, c) = (req("a"), req("b"), req("c"));
    // `b` with its key last (a hand-edited file): found through the full parse.
    let mut v: serde_json::Value = serde_json::from_str(&line(&b, "B")).unwrap();
    let key = v.as_object_mut().unwrap().shift_remove("key").unwrap();
    v.as_object_mut().unwrap().insert("key".into(), key);
    // `c`'s line starts with its key but is otherwise broken.
    let broken = format!(
        "{{\"key\":\"{}\",\"response\":{{\"choices\":7}}}}",
        cassette_key(&c)
    );
    let text = format!("{}\n\n{}\n{broken}\n", line(&a, "A"), v);
    std::fs::write(dir.path().join("m/s.jsonl"), text).unwrap();
    let replay = ReplayBackend::open(dir.path(), std::path::Path::new("cassettes"), "m").unwrap();
    assert_eq!(replay.len(), 3);
    assert_eq!(replay.generate(&a).await.unwrap().choices[0].text, "A");
    assert_eq!(replay.generate(&b).await.unwrap().choices[0].text, "B");
    let e = replay.generate(&c).await.unwrap_err();
    assert_eq!(e.kind, InfraKind::Other);
    assert!(
        e.message
            .starts_with("cassettes/m/s.jsonl:4: invalid cassette entry"),
        "{}",
        e.message
    );
    let miss = replay.generate(&req("d")).await.unwrap_err();
    assert_eq!(miss.kind, InfraKind::Missing);
}

#[tokio::test]
async fn a_line_that_is_not_json_fails_the_suite_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("m")).unwrap();
    std::fs::write(
        dir.path().join("m/s.jsonl"),
        format!("{}\nnot json\n", line(&req("a"), "A")),
    )
    .unwrap();
    let replay = ReplayBackend::open(dir.path(), std::path::Path::new("cassettes"), "m").unwrap();
    let e = replay.generate(&req("a")).await.unwrap_err();
    assert!(
        e.message.contains(":2: invalid cassette entry"),
        "{}",
        e.message
    );
}
