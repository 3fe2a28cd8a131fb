//! Live checks of the cloud presets, one small request each. A provider is checked only when
//! its key variable is set (never in CI); otherwise its test prints a skip line. The model
//! can be changed with `LLMTEST_LIVE_<PROVIDER>_MODEL`.

mod support;

use std::io::Write;

use serde_json::json;

use llmtest_backend::BackendContext;
use support::{chat, model};

async fn live(provider: &str, key_var: &str, default_model: &str) {
    if std::env::var(key_var).map(|v| v.is_empty()).unwrap_or(true) {
        // Straight to stderr: the test harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "skipped live {provider} check: {key_var} is not set"
        );
        return;
    }
    let model_id = std::env::var(format!("LLMTEST_LIVE_{}_MODEL", provider.to_uppercase()))
        .unwrap_or_else(|_| default_model.to_owned());
    let b = llmtest_openai::factory()
        .create(
            &model(
                provider,
                1,
                json!({"provider": provider, "model": model_id, "request_timeout_s": 120}),
            ),
            &BackendContext::default(),
        )
        .unwrap();
    let mut req = chat("Reply with the single word OK.", 1);
    req.params.max_tokens = Some(64);
    req.params.temperature = Some(0.0);
    let r = b
        .generate(&req)
        .await
        .unwrap_or_else(|e| panic!("{provider}: {e}"));
    let c = &r.choices[0];
    assert!(
        !c.text.trim().is_empty() || c.reasoning.is_some(),
        "{provider}: {c:?}"
    );
    assert!(r.timings.ttft_ms.is_some(), "{provider}: streamed");
    eprintln!(
        "{provider} {model_id}: {:?} ttft {:?} ms, usage {:?}",
        c.text, r.timings.ttft_ms, r.usage
    );
}

#[tokio::test]
async fn dashscope() {
    live("dashscope", "DASHSCOPE_API_KEY", "qwen-plus").await;
}

#[tokio::test]
async fn siliconflow() {
    live(
        "siliconflow",
        "SILICONFLOW_API_KEY",
        "Qwen/Qwen2.5-7B-Instruct",
    )
    .await;
}

#[tokio::test]
async fn deepseek() {
    live("deepseek", "DEEPSEEK_API_KEY", "deepseek-chat").await;
}

#[tokio::test]
async fn openai() {
    live("openai", "OPENAI_API_KEY", "gpt-4o-mini").await;
}

#[tokio::test]
async fn openrouter() {
    live("openrouter", "OPENROUTER_API_KEY", "openai/gpt-4o-mini").await;
}
