//! The fault matrix: every way an OpenAI-compatible server or the network between us can go
//! wrong, scripted by a server on 127.0.0.1; each case checks the outcome's kind and the
//! retries it took.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use llmtest_backend::{Backend, BackendContext, InfraError, InfraKind, Response};
use support::{End, Hit, Reply, TestServer, chat, completion, data, model};

const MS: Duration = Duration::from_millis(1);

/// A backend on `server` with fast retries; `extra` overrides options.
fn backend(base_url: &str, extra: Value) -> Arc<dyn Backend> {
    let mut opts = json!({
        "base_url": base_url,
        "max_retries": 2,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        "read_timeout_s": 5,
        "request_timeout_s": 20,
    });
    for (k, v) in extra.as_object().unwrap() {
        opts[k] = v.clone();
    }
    llmtest_openai::factory()
        .create(&model("m", 4, opts), &BackendContext::default())
        .unwrap()
}

fn ok_stream(text: &str) -> Reply {
    Reply::chat_stream(&[(Duration::ZERO, text)])
}

async fn expect_err(b: &Arc<dyn Backend>, kind: InfraKind, retries: u32) -> InfraError {
    let e = b
        .generate(&chat("hi", 1))
        .await
        .expect_err("an infrastructure error");
    assert_eq!((e.kind.clone(), e.retries), (kind, retries), "{e}");
    e
}

fn retries_of(r: &Response) -> u64 {
    r.facts.get("retries").and_then(Value::as_u64).unwrap_or(0)
}

#[tokio::test]
async fn status_429_honours_retry_after_then_succeeds() {
    let s = TestServer::start(|i, _| match i {
        0 => Reply::status(429, r#"{"error":{"message":"slow down"}}"#)
            .header("retry-after-ms", "150"),
        1 => Reply::status(429, r#"{"error":{"message":"slow down"}}"#).header("retry-after", "1"),
        _ => ok_stream("fine"),
    })
    .await;
    let b = backend(&s.base_url(), json!({}));
    let t = Instant::now();
    let r = b.generate(&chat("hi", 1)).await.unwrap();
    let waited = t.elapsed();
    assert_eq!(r.choices[0].text, "fine");
    assert_eq!(retries_of(&r), 2);
    assert_eq!(s.count(), 3);
    // 150 ms + 1 s as the server asked, not the 10-50 ms backoff.
    assert!(waited >= Duration::from_millis(1150), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let f = b.facts();
    assert_eq!(f["rate_limited_responses"], 2);
}

#[tokio::test]
async fn status_429_until_retries_run_out() {
    let s =
        TestServer::start(|_, _| Reply::status(429, r#"{"error":{"message":"quota exceeded"}}"#))
            .await;
    let b = backend(&s.base_url(), json!({}));
    let e = expect_err(&b, InfraKind::RateLimited, 2).await;
    assert_eq!(e.status, Some(429));
    assert!(e.body.as_deref().unwrap().contains("quota exceeded"));
    assert_eq!(s.count(), 3);
}

#[tokio::test]
async fn retry_after_past_the_deadline_fails_at_once() {
    let s = TestServer::start(|_, _| Reply::status(429, "{}").header("retry-after", "30")).await;
    let b = backend(&s.base_url(), json!({"request_timeout_s": 10}));
    let t = Instant::now();
    let e = expect_err(&b, InfraKind::RateLimited, 0).await;
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(e.message.contains("no time left"), "{e}");
}

#[tokio::test]
async fn status_500_and_503_are_retried() {
    let s = TestServer::start(|i, _| match i {
        0 => Reply::status(500, "oops"),
        1 => Reply::status(503, "loading"),
        _ => ok_stream("up"),
    })
    .await;
    let b = backend(&s.base_url(), json!({}));
    let r = b.generate(&chat("hi", 1)).await.unwrap();
    assert_eq!((r.choices[0].text.as_str(), retries_of(&r)), ("up", 2));

    let s = TestServer::start(|_, _| Reply::status(503, "model is loading")).await;
    let b = backend(&s.base_url(), json!({"max_retries": 3}));
    let e = expect_err(&b, InfraKind::Server, 3).await;
    assert_eq!(e.status, Some(503));
    assert_eq!(e.body.as_deref(), Some("model is loading"));
    assert_eq!(s.count(), 4);
}

#[tokio::test]
async fn other_4xx_is_not_retried() {
    let s =
        TestServer::start(|_, _| Reply::status(400, r#"{"error":{"message":"unknown model"}}"#))
            .await;
    let b = backend(&s.base_url(), json!({}));
    let e = expect_err(&b, InfraKind::Client, 0).await;
    assert_eq!(e.status, Some(400));
    assert!(e.to_string().contains("unknown model"));
    assert_eq!(s.count(), 1);
}

#[tokio::test]
async fn connection_reset_is_retried() {
    let s = TestServer::start(|i, _| {
        if i == 0 {
            Reply::Reset
        } else {
            ok_stream("again")
        }
    })
    .await;
    let b = backend(&s.base_url(), json!({}));
    let r = b.generate(&chat("hi", 1)).await.unwrap();
    assert_eq!((r.choices[0].text.as_str(), retries_of(&r)), ("again", 1));

    let s = TestServer::start(|_, _| Reply::Reset).await;
    let b = backend(&s.base_url(), json!({}));
    let e = expect_err(&b, InfraKind::Connection, 2).await;
    assert_eq!(e.status, None);
    assert_eq!(s.count(), 3);
}

#[tokio::test]
async fn refused_connection_is_a_connection_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = backend(
        &format!("http://127.0.0.1:{port}/v1"),
        json!({"max_retries": 1}),
    );
    let e = expect_err(&b, InfraKind::Connection, 1).await;
    assert!(e.message.contains("connection failed"), "{e}");
}

#[tokio::test]
async fn slow_first_byte_within_the_read_timeout_is_fine() {
    let s =
        TestServer::start(|_, _| Reply::chat_stream(&[(300 * MS, "late"), (10 * MS, "!")])).await;
    let b = backend(&s.base_url(), json!({"read_timeout_s": 2}));
    let r = b.generate(&chat("hi", 1)).await.unwrap();
    assert_eq!(r.choices[0].text, "late!");
    let ttft = r.timings.ttft_ms.unwrap();
    assert!((295.0..400.0).contains(&ttft), "{ttft}");
}

#[tokio::test]
async fn slow_first_byte_past_the_read_timeout_times_out() {
    let s = TestServer::start(|_, _| Reply::Status {
        code: 200,
        headers: vec![],
        body: "{}".into(),
        delay: Duration::from_secs(3),
    })
    .await;
    let b = backend(&s.base_url(), json!({"read_timeout_s": 0.3}));
    let t = Instant::now();
    let e = expect_err(&b, InfraKind::Timeout, 0).await;
    assert!(t.elapsed() < Duration::from_millis(2500));
    assert!(e.message.contains("response headers"), "{e}");
}

#[tokio::test]
async fn stalled_stream_times_out_with_an_excerpt() {
    let s = TestServer::start(|_, _| {
        let Reply::Sse { mut pieces, .. } =
            Reply::chat_stream(&[(Duration::ZERO, "part"), (5 * MS, "ial")])
        else {
            unreachable!()
        };
        pieces.truncate(2);
        Reply::Sse {
            pieces,
            end: End::Stall(Duration::from_secs(5)),
        }
    })
    .await;
    let b = backend(&s.base_url(), json!({"read_timeout_s": 0.3}));
    let t = Instant::now();
    let e = expect_err(&b, InfraKind::Timeout, 0).await;
    assert!(t.elapsed() < Duration::from_secs(4));
    assert!(e.message.contains("stream stalled"), "{e}");
    assert_eq!(e.status, Some(200));
    assert!(e.body.as_deref().unwrap().contains("ial"), "{e}");
}

#[tokio::test]
async fn malformed_chunk_is_a_stream_error() {
    let s = TestServer::start(|_, _| Reply::Sse {
        pieces: vec![
            (
                Duration::ZERO,
                data(&json!({"choices": [{"index": 0, "delta": {"content": "ok"}}]})),
            ),
            (Duration::ZERO, "data: {\"choices\": [{\"delta\"\n\n".into()),
        ],
        end: End::Finish,
    })
    .await;
    let b = backend(&s.base_url(), json!({}));
    let e = expect_err(&b, InfraKind::Stream, 0).await;
    assert!(e.message.contains("malformed chunk"), "{e}");
    assert!(
        e.body
            .as_deref()
            .unwrap()
            .contains("{\"choices\": [{\"delta\""),
        "{e}"
    );
    assert_eq!(s.count(), 1);
}

#[tokio::test]
async fn mid_stream_error_is_a_stream_error() {
    let s = TestServer::start(|_, _| Reply::Sse {
        pieces: vec![
            (
                Duration::ZERO,
                data(&json!({"choices": [{"index": 0, "delta": {"content": "4"}}]})),
            ),
            (
                Duration::ZERO,
                data(&json!({"error": {"message": "CUDA out of memory"}})),
            ),
        ],
        end: End::Finish,
    })
    .await;
    let b = backend(&s.base_url(), json!({}));
    let e = expect_err(&b, InfraKind::Stream, 0).await;
    assert!(e.message.contains("CUDA out of memory"), "{e}");
}

#[tokio::test]
async fn keep_alive_comments_are_not_tokens() {
    let s = TestServer::start(|_, _| {
        let Reply::Sse { pieces, end } =
            Reply::chat_stream(&[(Duration::ZERO, "a"), (20 * MS, "b"), (20 * MS, "c")])
        else {
            unreachable!()
        };
        let mut with = Vec::new();
        for p in pieces {
            with.push((Duration::ZERO, ": keep-alive\n\n".to_owned()));
            with.push(p);
        }
        Reply::Sse { pieces: with, end }
    })
    .await;
    let b = backend(&s.base_url(), json!({}));
    let r = b.generate(&chat("hi", 1)).await.unwrap();
    assert_eq!(r.choices[0].text, "abc");
    assert_eq!(r.timings.gaps_ms.len(), 2);
    assert_eq!(r.usage.as_ref().unwrap().completion_tokens, Some(3));
    assert!(!r.usage.unwrap().counted);
}

#[tokio::test]
async fn missing_done_is_a_stream_error_unless_allowed() {
    let script = |_, _: &Hit| {
        let Reply::Sse { mut pieces, end } = ok_stream("no end") else {
            unreachable!()
        };
        pieces.pop();
        Reply::Sse { pieces, end }
    };
    let s = TestServer::start(script).await;
    let e = expect_err(&backend(&s.base_url(), json!({})), InfraKind::Stream, 0).await;
    assert!(e.message.contains("without [DONE]"), "{e}");
    let r = backend(&s.base_url(), json!({"require_done": false}))
        .generate(&chat("hi", 1))
        .await
        .unwrap();
    assert_eq!(r.choices[0].text, "no end");
}

#[tokio::test]
async fn truncated_body_is_a_stream_error() {
    for end in [End::Truncate, End::Reset] {
        let e2 = end.clone();
        let s = TestServer::start(move |_, _| {
            let Reply::Sse { mut pieces, .. } = ok_stream("cut") else {
                unreachable!()
            };
            pieces.truncate(1);
            Reply::Sse {
                pieces,
                end: e2.clone(),
            }
        })
        .await;
        let e = expect_err(&backend(&s.base_url(), json!({})), InfraKind::Stream, 0).await;
        assert!(
            e.message.contains("broken") || e.message.contains("cut"),
            "{end:?}: {e}"
        );
        assert_eq!(e.status, Some(200));
    }
}

#[tokio::test]
async fn reasoning_stream_fills_the_reasoning_channel() {
    let s = TestServer::start(|_, _| {
        let chunk = |delta: Value| data(&json!({"choices": [{"index": 0, "delta": delta}]}));
        Reply::Sse {
            pieces: vec![
                (
                    30 * MS,
                    chunk(json!({"role": "assistant", "reasoning_content": "Two plus"})),
                ),
                (
                    10 * MS,
                    chunk(json!({"reasoning_content": " two is four."})),
                ),
                (40 * MS, chunk(json!({"content": "4"}))),
                (
                    Duration::ZERO,
                    data(&json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
                ),
                (Duration::ZERO, "data: [DONE]\n\n".into()),
            ],
            end: End::Finish,
        }
    })
    .await;
    let r = backend(&s.base_url(), json!({"include_usage": false}))
        .generate(&chat("2+2?", 1))
        .await
        .unwrap();
    let c = &r.choices[0];
    assert_eq!(
        (
            c.text.as_str(),
            c.reasoning.as_deref(),
            c.finish_reason.as_deref()
        ),
        ("4", Some("Two plus two is four."), Some("stop"))
    );
    let (ttft, ttfa) = (r.timings.ttft_ms.unwrap(), r.timings.ttfa_ms.unwrap());
    // Scheduled 50 ms apart; the bound leaves room for a loaded machine (accuracy itself is
    // checked in tests/timing.rs): what matters here is which chunk each figure comes from.
    assert!(
        ttft >= 29.0 && ttfa >= ttft + 25.0,
        "ttft {ttft} ttfa {ttfa}"
    );
    // No usage asked for: tokens were counted from the chunks.
    let u = r.usage.unwrap();
    assert_eq!((u.completion_tokens, u.counted), (Some(3), true));
}

#[tokio::test]
async fn inline_think_stays_in_the_text() {
    let s = TestServer::start(|_, _| {
        Reply::chat_stream(&[
            (Duration::ZERO, "<think>"),
            (20 * MS, "hmm"),
            (20 * MS, "</think>"),
            (20 * MS, "\n\nyes"),
        ])
    })
    .await;
    let r = backend(&s.base_url(), json!({}))
        .generate(&chat("?", 1))
        .await
        .unwrap();
    assert_eq!(r.choices[0].text, "<think>hmm</think>\n\nyes");
    assert_eq!(r.choices[0].reasoning, None);
    // The answer starts 60 ms after `<think>` (scheduled); see the note above on the bound.
    assert!(
        r.timings.ttfa_ms.unwrap() >= r.timings.ttft_ms.unwrap() + 30.0,
        "{:?}",
        r.timings
    );
}

#[tokio::test]
async fn tool_calls_are_kept() {
    let s = TestServer::start(|_, _| {
        let tc = |v: Value| data(&json!({"choices": [{"index": 0, "delta": {"tool_calls": [v]}}]}));
        Reply::Sse {
            pieces: vec![
                (Duration::ZERO, tc(json!({"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}))),
                (Duration::ZERO, tc(json!({"index": 0, "function": {"arguments": "{\"city\": "}}))),
                (Duration::ZERO, tc(json!({"index": 0, "function": {"arguments": "\"Paris\"}"}}))),
                (Duration::ZERO, data(&json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))),
                (Duration::ZERO, "data: [DONE]\n\n".into()),
            ],
            end: End::Finish,
        }
    })
    .await;
    let b = backend(&s.base_url(), json!({}));
    let mut req = chat("weather in Paris?", 1);
    req.params.tools = Some(vec![
        json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}),
    ]);
    req.params.tool_choice = Some(json!("auto"));
    let r = b.generate(&req).await.unwrap();
    let c = &r.choices[0];
    assert_eq!(c.tool_calls.len(), 1);
    assert_eq!(
        (
            c.tool_calls[0].id.as_deref(),
            c.tool_calls[0].name.as_str(),
            c.tool_calls[0].arguments.as_str()
        ),
        (Some("call_1"), "get_weather", "{\"city\": \"Paris\"}")
    );
    assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
    let sent = &s.hits()[0].body;
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["tool_choice"], "auto");
}

#[tokio::test]
async fn non_streaming_json_and_its_faults() {
    let s = TestServer::start(|i, h| match i {
        0 => {
            assert!(h.body.get("stream").is_none());
            Reply::json(json!({"model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole", "reasoning_content": "r"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}))
        }
        1 => Reply::status(200, r#"{"choices": [{"message": "#),
        _ => Reply::json(json!({"choices": []})),
    })
    .await;
    let b = backend(&s.base_url(), json!({"stream": false}));
    let r = b.generate(&chat("hi", 1)).await.unwrap();
    assert_eq!(
        (
            r.choices[0].text.as_str(),
            r.choices[0].reasoning.as_deref()
        ),
        ("whole", Some("r"))
    );
    assert_eq!(r.timings.ttft_ms, None, "no token timings without a stream");
    assert!(r.timings.total_ms > 0.0);
    let e = expect_err(&b, InfraKind::Stream, 0).await;
    assert!(e.message.contains("not valid JSON"), "{e}");
    let e = expect_err(&b, InfraKind::Stream, 0).await;
    assert!(e.message.contains("empty `choices`"), "{e}");
}

#[tokio::test]
async fn completions_endpoint_streams_text() {
    let s = TestServer::start(|_, h| {
        assert_eq!(h.path, "/v1/completions");
        assert_eq!(h.body["prompt"], "1 + 1 =");
        Reply::Sse {
            pieces: vec![
                (
                    Duration::ZERO,
                    data(&json!({"choices": [{"index": 0, "text": " 2"}]})),
                ),
                (
                    Duration::ZERO,
                    data(&json!({"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]})),
                ),
                (Duration::ZERO, "data: [DONE]\n\n".into()),
            ],
            end: End::Finish,
        }
    })
    .await;
    let r = backend(&s.base_url(), json!({}))
        .generate(&completion("1 + 1 =", 1))
        .await
        .unwrap();
    assert_eq!(r.choices[0].text, " 2");
}

#[tokio::test]
async fn native_n_is_topped_up_when_the_server_ignores_it() {
    let s = TestServer::start(|_, _| ok_stream("one")).await;
    let b = backend(&s.base_url(), json!({"n": "native"}));
    let r = b.generate(&chat("hi", 3)).await.unwrap();
    assert_eq!(r.choices.len(), 3);
    let hits = s.hits();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].body["n"], 3);
    assert!(hits[1].body.get("n").is_none());

    let s = TestServer::start(|_, _| ok_stream("seq")).await;
    let r = backend(&s.base_url(), json!({"n": "sequential"}))
        .generate(&chat("hi", 2))
        .await
        .unwrap();
    assert_eq!(r.choices.len(), 2);
    assert!(s.hits().iter().all(|h| h.body.get("n").is_none()));
    assert_eq!(r.usage.unwrap().completion_tokens, Some(2));
}

#[tokio::test]
async fn native_n_streams_interleaved_choices() {
    let s = TestServer::start(|_, _| {
        let c = |i: u32, t: &str| data(&json!({"choices": [{"index": i, "delta": {"content": t}}]}));
        Reply::Sse {
            pieces: vec![
                (Duration::ZERO, c(1, "b1")),
                (Duration::ZERO, c(0, "a1")),
                (Duration::ZERO, c(1, "b2")),
                (Duration::ZERO, data(&json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}, {"index": 1, "delta": {}, "finish_reason": "length"}]}))),
                (Duration::ZERO, "data: [DONE]\n\n".into()),
            ],
            end: End::Finish,
        }
    })
    .await;
    let r = backend(&s.base_url(), json!({"n": "native"}))
        .generate(&chat("hi", 2))
        .await
        .unwrap();
    assert_eq!(
        r.choices
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>(),
        ["a1", "b1b2"]
    );
    assert!(r.choices[1].truncated());
    assert_eq!(s.count(), 1);
}

#[tokio::test]
async fn replicas_share_the_load_and_a_dead_one_is_skipped() {
    let a = TestServer::start(|_, _| ok_stream("a")).await;
    let b = TestServer::start(|_, _| ok_stream("b")).await;
    let dead = format!(
        "http://127.0.0.1:{}/v1",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let be = backend(
        "unused",
        json!({"base_url": null, "base_urls": [a.base_url(), dead, b.base_url()]}),
    );
    let mut retries = 0;
    for _ in 0..12 {
        let r = be.generate(&chat("hi", 1)).await.unwrap();
        retries += retries_of(&r);
    }
    // The dead replica cost one retry (with no backoff), then sat out its cooldown.
    assert_eq!(retries, 1);
    assert_eq!(a.count() + b.count(), 12);
    assert!(
        a.count() >= 5 && b.count() >= 5,
        "{} {}",
        a.count(),
        b.count()
    );
}

#[tokio::test]
async fn concurrency_halves_on_429_and_recovers() {
    let served = Arc::new(AtomicUsize::new(0));
    let sv = served.clone();
    let s = TestServer::start(move |i, _| {
        if i < 4 {
            Reply::status(429, "busy").header("retry-after-ms", "20")
        } else {
            sv.fetch_add(1, Ordering::SeqCst);
            Reply::chat_stream(&[(5 * MS, "ok")])
        }
    })
    .await;
    let b = llmtest_openai::factory()
        .create(
            &model(
                "m",
                8,
                json!({"base_url": s.base_url(), "max_retries": 5, "backoff_initial_s": 0.01}),
            ),
            &BackendContext::default(),
        )
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let b = b.clone();
        tasks.push(tokio::spawn(
            async move { b.generate(&chat("hi", 1)).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let f = b.facts();
    assert!(
        f["concurrency_limit_lowest"].as_u64().unwrap() <= 4,
        "{f:?}"
    );
    for _ in 0..60 {
        b.generate(&chat("hi", 1)).await.unwrap();
    }
    assert_eq!(
        b.facts()["concurrency_limit"],
        8,
        "recovered to max_concurrency"
    );
    assert_eq!(served.load(Ordering::SeqCst), 68);
}

#[tokio::test]
async fn rpm_limit_spaces_requests() {
    let s = TestServer::start(|_, _| ok_stream("ok")).await;
    // 2 per minute: the third request would wait ~60 s, past a 1 s request timeout.
    let b = backend(&s.base_url(), json!({"rpm": 2, "request_timeout_s": 1}));
    b.generate(&chat("1", 1)).await.unwrap();
    b.generate(&chat("2", 1)).await.unwrap();
    let e = expect_err(&b, InfraKind::RateLimited, 0).await;
    assert!(e.message.contains("rpm"), "{e}");
    assert_eq!(s.count(), 2);
}

#[tokio::test]
async fn request_timeout_bounds_everything() {
    // A server that trickles a keep-alive comment forever never trips the read timeout.
    let s = TestServer::start(|_, _| Reply::Sse {
        pieces: (0..200)
            .map(|_| (50 * MS, ": ping\n\n".to_owned()))
            .collect(),
        end: End::Finish,
    })
    .await;
    let b = backend(
        &s.base_url(),
        json!({"request_timeout_s": 0.5, "read_timeout_s": 1}),
    );
    let t = Instant::now();
    let e = expect_err(&b, InfraKind::Timeout, 0).await;
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(e.message.contains("request_timeout_s"), "{e}");
}

#[tokio::test]
async fn params_and_extra_body_reach_the_server() {
    let s = TestServer::start(|_, _| ok_stream("ok")).await;
    let b = backend(
        &s.base_url(),
        json!({"model": "served-id", "headers": {"x-team": "evals"}}),
    );
    let mut req = chat("hi", 1);
    req.params.temperature = Some(0.0);
    req.params.seed = Some(42);
    req.params.stop = Some(vec!["\n".into()]);
    req.params.response_format = Some(json!({"type": "json_object"}));
    req.params
        .extra_body
        .insert("repetition_penalty".into(), json!(1.1));
    b.generate(&req).await.unwrap();
    let body = &s.hits()[0].body;
    assert_eq!(body["model"], "served-id");
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["seed"], 42);
    assert_eq!(body["stop"], json!(["\n"]));
    assert_eq!(body["response_format"]["type"], "json_object");
    assert_eq!(body["repetition_penalty"], 1.1);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(
        s.hits()[0].authorization,
        None,
        "no key configured, none sent"
    );
}

#[tokio::test]
async fn a_body_left_open_after_done_is_not_waited_for() {
    let s = TestServer::start(|_, _| {
        let Reply::Sse { pieces, .. } = ok_stream("done") else {
            unreachable!()
        };
        Reply::Sse {
            pieces,
            end: End::Stall(Duration::from_secs(10)),
        }
    })
    .await;
    let t = Instant::now();
    let r = backend(&s.base_url(), json!({"read_timeout_s": 5}))
        .generate(&chat("hi", 1))
        .await
        .unwrap();
    assert_eq!(r.choices[0].text, "done");
    // Far below the 5 s read timeout and the 10 s the server holds the body open.
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn shutdown_stops_a_server_that_is_still_starting() {
    // A "server" that never answers: the readiness check keeps waiting.
    let opts =
        json!({"server": {"command": ["sh", "-c", "sleep 30", "{port}"], "ready_timeout_s": 60}});
    let b = llmtest_openai::factory()
        .create(&model("m", 1, opts), &BackendContext::default())
        .unwrap();
    let b2 = b.clone();
    let pending = tokio::spawn(async move { b2.generate(&chat("hi", 1)).await });
    let until = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(p) = b.facts().get("server_pid").and_then(Value::as_i64) {
            break p;
        }
        assert!(Instant::now() < until, "server never spawned");
        tokio::time::sleep(10 * MS).await;
    };
    let t = Instant::now();
    b.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(5));
    let e = pending.await.unwrap().unwrap_err();
    assert_eq!(e.kind, InfraKind::Unavailable, "{e}");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap()
                .contains(") Z"),
        "server {pid} still running"
    );
    // No new server after shutdown.
    assert_eq!(
        b.generate(&chat("hi", 1)).await.unwrap_err().kind,
        InfraKind::Unavailable
    );
}

#[tokio::test]
async fn served_model_paths_keep_only_the_file_name() {
    let s = TestServer::start(|_, _| Reply::json(json!({"model": "/home/someone/models/tiny.gguf", "choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]}))).await;
    let r = backend(&s.base_url(), json!({"stream": false}))
        .generate(&chat("hi", 1))
        .await
        .unwrap();
    assert_eq!(r.facts["served_model"], "tiny.gguf");
}

#[tokio::test]
async fn a_kept_alive_connection_closed_by_the_server_is_resent_not_retried() {
    let s = TestServer::start(|i, _| match i {
        1 => Reply::Close,
        _ => ok_stream("fresh"),
    })
    .await;
    let b = backend(&s.base_url(), json!({}));
    b.generate(&chat("first", 1)).await.unwrap();
    let r = b.generate(&chat("second", 1)).await.unwrap();
    assert_eq!((r.choices[0].text.as_str(), retries_of(&r)), ("fresh", 0));
    assert_eq!(b.facts()["stale_connections_resent"], 1);
    assert_eq!(s.count(), 3);

    // A server that always hangs up: resends up to the pool's size (max_concurrency 4, plus
    // one), then ordinary retries.
    let s = TestServer::start(|_, _| Reply::Close).await;
    let b = backend(&s.base_url(), json!({}));
    let e = expect_err(&b, InfraKind::Connection, 2).await;
    assert!(
        e.message.contains("connection lost before a response"),
        "{e}"
    );
    assert_eq!(s.count(), 5 + 3);
}
