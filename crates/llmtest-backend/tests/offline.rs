//! The backends that need no network: record → replay round trip, replay misses, secrets
//! kept out of cassettes, `outputs` and `exec`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use llmtest_backend::{
    Backend, BackendContext, BackendFactory, Choice, InfraError, InfraKind, RecordBackend,
    ReplayBackend, Request, Response, Timings, cassette_key,
};
use llmtest_spec::{GenParams, Message, ModelConfig, Prompt, Role};

/// A live backend stand-in that counts its calls and echoes a secret-bearing fact.
struct Counting {
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl Backend for Counting {
    async fn generate(&self, req: &Request) -> Result<Response, InfraError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let choices = (0..req.n)
            .map(|i| Choice::text(format!("answer {i} to {}", req.prompt.text())))
            .collect();
        let mut facts = serde_json::Map::new();
        facts.insert(
            "auth".into(),
            serde_json::Value::String(std::env::var("LLMTEST_TEST_CASSETTE_API_KEY").unwrap()),
        );
        Ok(Response {
            choices,
            usage: None,
            timings: Timings {
                ttft_ms: Some(12.0),
                total_ms: 30.0,
                ..Timings::default()
            },
            facts,
        })
    }
}

fn req(case: &str, prompt: &str) -> Request {
    Request {
        model: "m".into(),
        suite: "s".into(),
        case_id: case.into(),
        prompt: Prompt::Chat(vec![Message {
            role: Role::User,
            content: prompt.into(),
        }]),
        params: GenParams {
            temperature: Some(0.0),
            ..GenParams::default()
        },
        n: 2,
    }
}

#[tokio::test]
async fn record_then_replay_round_trip_without_the_live_backend() {
    // SAFETY: set once, before anything reads it, with a name no other test uses.
    unsafe { std::env::set_var("LLMTEST_TEST_CASSETTE_API_KEY", "sk-cassette-secret-123") };
    let dir = tempfile::tempdir().unwrap();
    let live = Arc::new(Counting {
        calls: AtomicU32::new(0),
    });
    let rec = RecordBackend::new(live.clone(), dir.path(), "m");
    let a = rec.generate(&req("a", "x^2-5x+6=0")).await.unwrap();
    rec.generate(&req("b", "1+1")).await.unwrap();
    rec.shutdown().await;
    assert_eq!(live.calls.load(Ordering::SeqCst), 2);

    let text = std::fs::read_to_string(dir.path().join("m/s.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(
        !text.contains("sk-cassette-secret-123"),
        "a secret reached the cassette: {text}"
    );
    // Redacted where it was, not lost with the fact that held it.
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["response"]["facts"]["auth"], "[REDACTED]", "{line}");
    }

    let replay =
        ReplayBackend::open(dir.path(), std::path::Path::new("fixtures/cassettes"), "m").unwrap();
    assert_eq!(replay.len(), 2);
    let r = replay.generate(&req("a", "x^2-5x+6=0")).await.unwrap();
    assert_eq!(r.choices, a.choices);
    assert!(r.timings.replayed, "replayed timings must be marked");
    // A renamed case hits the same cassette (the key is model + prompt + params + n).
    assert!(replay.generate(&req("renamed", "x^2-5x+6=0")).await.is_ok());
    assert_eq!(
        live.calls.load(Ordering::SeqCst),
        2,
        "replay never calls the live backend"
    );
}

#[tokio::test]
async fn replay_miss_names_the_case_and_how_to_record() {
    let dir = tempfile::tempdir().unwrap();
    let replay = ReplayBackend::open(
        dir.path(),
        std::path::Path::new("fixtures/cassettes"),
        "qwen2.5-7b",
    )
    .unwrap();
    let mut r = req("revenue-2024", "changed prompt");
    r.model = "qwen2.5-7b".into();
    let e = replay.generate(&r).await.unwrap_err();
    assert_eq!(e.kind, InfraKind::Missing);
    assert!(e.message.contains("case `revenue-2024`"), "{}", e.message);
    assert!(
        e.message.contains("llmtest record --model qwen2.5-7b"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("fixtures/cassettes/qwen2.5-7b/s.jsonl"),
        "{}",
        e.message
    );
}

#[test]
fn key_changes_with_prompt_params_model_and_n_only() {
    let base = req("a", "p");
    let k = cassette_key(&base);
    assert_eq!(k, cassette_key(&req("other-name", "p")));
    assert_ne!(k, cassette_key(&req("a", "p2")));
    let mut t = base.clone();
    t.params.temperature = Some(0.7);
    assert_ne!(k, cassette_key(&t));
    let mut n = base.clone();
    n.n = 1;
    assert_ne!(k, cassette_key(&n));
    let mut m = base;
    m.model = "m2".into();
    assert_ne!(k, cassette_key(&m));
}

fn model(backend: &str, options: serde_json::Value) -> ModelConfig {
    ModelConfig::new("console", backend, options)
}

fn factory(name: &str) -> Arc<dyn BackendFactory> {
    llmtest_backend::builtin_factories()
        .into_iter()
        .find(|f| f.name() == name)
        .unwrap()
}

#[tokio::test]
async fn outputs_backend_serves_answers_by_case_and_reports_gaps() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        "{\"case\": \"a\", \"output\": \"581.6亿元\"}\n{\"case\": \"a\", \"suite\": \"other\", \"output\": \"no\"}\n",
    )
    .unwrap();
    let ctx = BackendContext {
        root: dir.path().into(),
        cassettes: dir.path().into(),
    };
    let b = factory("outputs")
        .create(
            &model("outputs", serde_json::json!({"path": "a.jsonl"})),
            &ctx,
        )
        .unwrap();
    let mut r = req("a", "q");
    r.n = 1;
    assert_eq!(b.generate(&r).await.unwrap().choices[0].text, "581.6亿元");
    let e = b.generate(&req("missing", "q")).await.unwrap_err();
    assert_eq!(e.kind, InfraKind::Missing);

    let skip = factory("outputs")
        .create(
            &model(
                "outputs",
                serde_json::json!({"path": "a.jsonl", "missing": "skip"}),
            ),
            &ctx,
        )
        .unwrap();
    assert_eq!(
        skip.generate(&req("missing", "q")).await.unwrap_err().kind,
        InfraKind::Skip
    );

    let err = factory("outputs")
        .create(
            &model("outputs", serde_json::json!({"pth": "a.jsonl"})),
            &ctx,
        )
        .err()
        .unwrap();
    assert!(err.to_string().contains("unknown key `pth`"), "{err}");
}

#[tokio::test]
async fn exec_backend_runs_a_command_and_reports_failures_as_infrastructure() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = BackendContext {
        root: dir.path().into(),
        cassettes: dir.path().into(),
    };
    let echo = factory("exec")
        .create(
            &model(
                "exec",
                serde_json::json!({"command": ["sh", "-c", "tr a-z A-Z"]}),
            ),
            &ctx,
        )
        .unwrap();
    let r = echo.generate(&req("a", "hello")).await.unwrap();
    assert_eq!(r.choices.len(), 2);
    assert_eq!(r.choices[0].text, "HELLO");

    let json = factory("exec")
        .create(
            &model(
                "exec",
                serde_json::json!({"command": ["sh", "-c", "cat"], "input": "json"}),
            ),
            &ctx,
        )
        .unwrap();
    let r = json.generate(&req("a", "hello")).await.unwrap();
    assert!(
        r.choices[0].text.contains("\"case_id\":\"a\""),
        "{}",
        r.choices[0].text
    );

    let fail = factory("exec")
        .create(
            &model(
                "exec",
                serde_json::json!({"command": ["sh", "-c", "echo boom >&2; exit 3"]}),
            ),
            &ctx,
        )
        .unwrap();
    let e = fail.generate(&req("a", "x")).await.unwrap_err();
    assert_eq!(e.kind, InfraKind::Process);
    assert_eq!(e.body.as_deref(), Some("boom"));

    let slow = factory("exec")
        .create(
            &model(
                "exec",
                serde_json::json!({"command": ["sleep", "5"], "timeout_s": 0.2}),
            ),
            &ctx,
        )
        .unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(
        slow.generate(&req("a", "x")).await.unwrap_err().kind,
        InfraKind::Timeout
    );
    assert!(
        t0.elapsed().as_secs() < 4,
        "the timed-out process was not killed promptly"
    );
}
