//! `backend: onnx` through llmtest's `Backend` interface, on the fixture model: chat and
//! completion prompts, stop strings, token limits, seeded sampling, n > 1, option errors and
//! the no-GPU behaviour of `require_gpu`.

mod common;

use std::sync::Arc;

use llmtest_backend::{Backend, BackendContext, BackendError, InfraKind, Request};
use llmtest_spec::{GenParams, Message, ModelConfig, Prompt, Role};
use serde_json::{Map, Value, json};

use common::{root, skip_unless_runtime};

const ANSWER: &str = "I am a tiny test model.";

fn config(options: Value) -> ModelConfig {
    ModelConfig::new("tiny-onnx", "onnx", options)
}

fn ctx() -> BackendContext {
    BackendContext {
        root: root(),
        cassettes: root().join("target/unused-cassettes"),
    }
}

fn create(options: Value) -> Result<Arc<dyn Backend>, BackendError> {
    llmtest_onnx::factory().create(&config(options), &ctx())
}

/// The CPU backend over the fixture, or `None` when the runtime is missing (skip).
fn backend(extra: Value) -> Option<Arc<dyn Backend>> {
    let mut opts =
        json!({"path": "fixtures/models/tiny-qwen2", "providers": ["cpu"], "threads": 1});
    if let Value::Object(m) = extra {
        opts.as_object_mut().unwrap().extend(m);
    }
    match create(opts) {
        Ok(b) => Some(b),
        Err(e) => {
            skip_unless_runtime(&e).unwrap_or_else(|| panic!("creating the backend failed: {e}"));
            None
        }
    }
}

fn chat(question: &str, params: GenParams, n: u32) -> Request {
    Request {
        model: "tiny-onnx".into(),
        suite: "table-qa".into(),
        case_id: "revenue".into(),
        prompt: Prompt::Chat(vec![
            Message {
                role: Role::System,
                content: "你是一个有用的助手。".into(),
            },
            Message {
                role: Role::User,
                content: question.into(),
            },
        ]),
        params,
        n,
    }
}

fn texts(r: &llmtest_backend::Response) -> Vec<&str> {
    r.choices.iter().map(|c| c.text.as_str()).collect()
}

#[tokio::test]
async fn chat_answers_the_scripted_sentence_with_timings_and_facts() {
    let Some(b) = backend(json!({})) else { return };
    let r = b
        .generate(&chat("京东健康2024年收入是多少？", GenParams::default(), 1))
        .await
        .unwrap();
    assert_eq!(texts(&r), [ANSWER]);
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("stop"));
    let usage = r.usage.as_ref().unwrap();
    assert_eq!(usage.completion_tokens, Some(7));
    assert!(usage.prompt_tokens.unwrap() > 20);
    let t = &r.timings;
    let ttft = t.ttft_ms.unwrap();
    assert!(ttft > 0.0 && ttft <= t.total_ms, "{t:?}");
    assert_eq!(
        t.gaps_ms.len(),
        6,
        "one gap between each pair of the 7 answer tokens: {t:?}"
    );
    assert!(t.gaps_ms.iter().all(|g| *g >= 0.0) && t.tokens_per_s.unwrap() > 0.0);
    assert!(!t.replayed);
    assert_eq!(r.facts["execution_provider"], "cpu");
    assert_eq!(r.facts["backend"], "onnx");
    let facts = b.facts();
    assert_eq!(facts["execution_provider"], "cpu");
    assert!(
        facts["onnxruntime"].as_str().unwrap().starts_with("1."),
        "{facts:?}"
    );
    b.shutdown().await;
}

#[tokio::test]
async fn completion_prompts_are_continued_as_is() {
    let Some(b) = backend(json!({})) else { return };
    let req = Request {
        prompt: Prompt::Completion(
            "上面的内容是京东健康2024年年度报告里的数据。京东健康2024年收入".into(),
        ),
        ..chat("", GenParams::default(), 1)
    };
    let r = b.generate(&req).await.unwrap();
    assert_eq!(texts(&r), [ANSWER]);
}

#[tokio::test]
async fn stop_strings_and_token_limits() {
    let Some(b) = backend(json!({})) else { return };
    let stop = GenParams {
        stop: Some(vec![" test".into(), "zzz".into()]),
        ..GenParams::default()
    };
    let r = b.generate(&chat("hi", stop, 1)).await.unwrap();
    assert_eq!(texts(&r), ["I am a tiny"]);
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("stop"));

    let short = GenParams {
        max_tokens: Some(3),
        ..GenParams::default()
    };
    let r = b.generate(&chat("hi", short, 1)).await.unwrap();
    assert_eq!(texts(&r), ["I am a"]);
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("length"));
    assert!(r.choices[0].truncated());

    // vLLM's ignore_eos: the scripted chain goes on past <|im_end|> (skipped in the text)
    let mut extra = Map::new();
    extra.insert("ignore_eos".into(), json!(true));
    let r = b
        .generate(&chat(
            "hi",
            GenParams {
                max_tokens: Some(12),
                extra_body: extra,
                ..GenParams::default()
            },
            1,
        ))
        .await
        .unwrap();
    assert_eq!(texts(&r), [format!("{ANSWER}I am a")]); // 7 + <|im_end|> + <|endoftext|> + 3
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("length"));
    assert_eq!(r.usage.unwrap().completion_tokens, Some(12));

    // the option's default applies when the request sets none
    let Some(b) = backend(json!({"max_tokens": 2})) else {
        return;
    };
    let r = b
        .generate(&chat("hi", GenParams::default(), 1))
        .await
        .unwrap();
    assert_eq!(texts(&r), ["I am"]);
}

#[tokio::test]
async fn seeded_sampling_is_reproducible_and_n_samples_differ() {
    // A high temperature flattens the scripted model's distribution enough to vary.
    let Some(b) = backend(json!({"max_batch": 3})) else {
        return;
    };
    let params = |seed| GenParams {
        temperature: Some(8.0),
        seed: Some(seed),
        max_tokens: Some(6),
        ..GenParams::default()
    };
    let a = b.generate(&chat("hi", params(42), 5)).await.unwrap();
    let again = b.generate(&chat("hi", params(42), 5)).await.unwrap();
    let other = b.generate(&chat("hi", params(43), 5)).await.unwrap();
    assert_eq!(a.choices.len(), 5);
    assert_eq!(texts(&a), texts(&again));
    assert_ne!(texts(&a), texts(&other));
    let distinct: std::collections::BTreeSet<&str> = texts(&a).into_iter().collect();
    assert!(
        distinct.len() > 1,
        "5 samples at temperature 8 were identical: {:?}",
        texts(&a)
    );
    let tokens = a.usage.as_ref().unwrap().completion_tokens.unwrap();
    assert!(tokens > 0 && tokens <= 5 * 6, "{tokens}");

    // the same samples whatever the batch size
    let Some(wide) = backend(json!({"max_batch": 8})) else {
        return;
    };
    let w = wide.generate(&chat("hi", params(42), 5)).await.unwrap();
    assert_eq!(texts(&a), texts(&w));
}

#[tokio::test]
async fn greedy_n_samples_are_all_the_answer() {
    let Some(b) = backend(json!({"max_batch": 2})) else {
        return;
    };
    let r = b
        .generate(&chat(
            "hi",
            GenParams {
                temperature: Some(0.0),
                ..GenParams::default()
            },
            3,
        ))
        .await
        .unwrap();
    assert_eq!(texts(&r), [ANSWER; 3]);
    assert_eq!(r.usage.unwrap().completion_tokens, Some(21));
}

#[tokio::test]
async fn tools_and_template_kwargs_reach_the_template() {
    let Some(b) = backend(json!({})) else { return };
    let tool = json!({"type": "function", "function": {"name": "revenue", "parameters": {"type": "object"}}});
    let mut extra = Map::new();
    extra.insert(
        "chat_template_kwargs".into(),
        json!({"enable_thinking": false}),
    );
    let params = GenParams {
        tools: Some(vec![tool]),
        extra_body: extra,
        ..GenParams::default()
    };
    let r = b.generate(&chat("hi", params, 1)).await.unwrap();
    // the scripted model never calls a tool: the answer stays text
    assert_eq!(texts(&r), [ANSWER]);
    assert!(r.choices[0].tool_calls.is_empty());
    assert!(
        r.usage.unwrap().prompt_tokens.unwrap() > 100,
        "tools were rendered into the prompt"
    );
}

#[tokio::test]
async fn unsupported_request_fields_are_client_errors() {
    let Some(b) = backend(json!({})) else { return };
    let mut extra = Map::new();
    extra.insert("guided_regex".into(), json!("a+"));
    let e = b
        .generate(&chat(
            "hi",
            GenParams {
                extra_body: extra,
                ..GenParams::default()
            },
            1,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind, InfraKind::Client);
    assert!(e.message.contains("guided_regex"), "{e}");
}

#[test]
fn options_are_parsed_strictly() {
    let err = create(json!({"path": "fixtures/models/tiny-qwen2", "provider": ["cpu"]}))
        .err()
        .unwrap();
    let BackendError::Config { message, hint } = err else {
        panic!("expected a config error")
    };
    assert!(message.contains("unknown key `provider`"), "{message}");
    assert!(hint.unwrap_or_default().contains("providers"));

    let err = create(json!({"path": "fixtures/models/tiny-qwen2", "providers": ["rocm"]}))
        .err()
        .unwrap();
    assert!(matches!(err, BackendError::Config { .. }), "{err}");

    let err = create(json!({"path": "fixtures/models/no-such-model"}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("does not exist"), "{err}");

    let err = create(
        json!({"path": "fixtures/models/tiny-qwen2", "providers": ["cpu"], "require_gpu": true}),
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, BackendError::Config { .. }) && err.to_string().contains("no GPU provider"),
        "{err}"
    );
}

/// This machine has no GPU (and CI has none): asking for one must be a clean "unavailable",
/// never a silent CPU run and never a crash.
#[test]
fn require_gpu_without_a_gpu_is_unavailable() {
    let err = create(json!({"path": "fixtures/models/tiny-qwen2", "providers": ["tensorrt", "cuda", "cpu"], "require_gpu": true})).err().expect("no GPU here");
    if skip_unless_runtime(&err).is_some() {
        return;
    }
    let BackendError::Unavailable(msg) = &err else {
        panic!("expected unavailable, got {err:?}")
    };
    eprintln!("{msg}");
    assert!(
        msg.starts_with("model `tiny-onnx`: no GPU execution provider could be used (require_gpu)"),
        "{msg}"
    );
    assert!(
        msg.contains("cuda: ") && msg.contains("tensorrt: ") && msg.contains("cpu: skipped"),
        "{msg}"
    );
}

#[tokio::test]
async fn gpu_providers_fall_back_visibly_when_not_required() {
    let Some(b) = backend(json!({"providers": ["cuda", "cpu"]})) else {
        return;
    };
    let facts = b.facts();
    assert_eq!(facts["execution_provider"], "cpu");
    let fallbacks = facts["provider_fallbacks"].as_array().unwrap();
    assert!(
        fallbacks[0].as_str().unwrap().starts_with("cuda: "),
        "{fallbacks:?}"
    );
    let r = b
        .generate(&chat("hi", GenParams::default(), 1))
        .await
        .unwrap();
    assert_eq!(r.facts["execution_provider"], "cpu");
}

#[test]
fn doctor_reports_the_library_and_the_gpu() {
    let text = llmtest_onnx::doctor_at(&root());
    eprintln!("{text}");
    assert!(text.contains("onnx runtime"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("gpu")), "{text}");
}
