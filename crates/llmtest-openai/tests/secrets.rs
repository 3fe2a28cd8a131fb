//! API keys come from the variable named in the config, travel only in the `Authorization`
//! header, and never reach errors, facts or responses. Alone in its test binary because it
//! sets environment variables.

mod support;

use serde_json::json;

use llmtest_backend::{BackendContext, BackendError, InfraKind};
use support::{Reply, TestServer, chat, data, model};

const KEY: &str = "sk-llmtest-0123456789abcdef";

#[tokio::test]
async fn keys_are_sent_but_never_shown() {
    // SAFETY: this binary's only test sets the variable before anything reads the environment.
    unsafe { std::env::set_var("LLMTEST_SECRETS_TEST_API_KEY", KEY) };
    let s = TestServer::start(|i, h| {
        let auth = h.authorization.clone().unwrap_or_default();
        match i {
            // Servers do echo what they were sent.
            0 => Reply::status(
                401,
                &json!({"error": {"message": format!("invalid authorization: {auth}")}})
                    .to_string(),
            ),
            1 => Reply::Sse {
                pieces: vec![(
                    Default::default(),
                    data(&json!({"error": {"message": format!("upstream refused {auth}")}})),
                )],
                end: support::End::Finish,
            },
            _ => Reply::chat_stream(&[(Default::default(), "ok")]),
        }
    })
    .await;
    let opts = json!({"provider": "dashscope", "base_url": s.base_url(), "api_key_env": "LLMTEST_SECRETS_TEST_API_KEY", "max_retries": 0});
    let b = llmtest_openai::factory()
        .create(&model("m", 1, opts), &BackendContext::default())
        .unwrap();

    let e = b.generate(&chat("hi", 1)).await.unwrap_err();
    assert_eq!(e.kind, InfraKind::Client);
    let shown = format!("{e} {e:?} {}", serde_json::to_string(&e).unwrap());
    assert!(!shown.contains(KEY), "{shown}");
    assert!(
        e.body.as_deref().unwrap().contains("Bearer [REDACTED]"),
        "{e}"
    );

    let e = b.generate(&chat("hi", 1)).await.unwrap_err();
    assert_eq!(e.kind, InfraKind::Stream);
    assert!(!format!("{e:?}").contains(KEY), "{e:?}");

    let r = b.generate(&chat("hi", 1)).await.unwrap();
    assert!(!serde_json::to_string(&r).unwrap().contains(KEY));
    assert!(!serde_json::to_string(&b.facts()).unwrap().contains(KEY));
    for h in s.hits() {
        assert_eq!(
            h.authorization.as_deref(),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert!(!h.body.to_string().contains(KEY), "never in the body");
    }

    // An unset variable skips the model's trials (the harness turns this into `ignored`).
    let opts = json!({"provider": "dashscope", "api_key_env": "LLMTEST_SECRETS_TEST_UNSET_KEY"});
    match llmtest_openai::factory().create(&model("m", 1, opts), &BackendContext::default()) {
        Err(BackendError::MissingCredential { var }) => {
            assert_eq!(var, "LLMTEST_SECRETS_TEST_UNSET_KEY")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("created without its key"),
    }
}
