//! Timing accuracy: against a server that writes each token at a known instant, the measured
//! time to first token and the gaps between tokens are within 2 ms of the server's own
//! record. Alone in its test binary so that no other test competes for the CPU.

mod support;

use std::time::Duration;

use serde_json::json;

use llmtest_backend::BackendContext;
use support::{Reply, TestServer, chat, model};

const TOLERANCE_MS: f64 = 2.0;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttft_and_gaps_match_the_servers_emit_instants() {
    let schedule_ms = [150u64, 20, 35, 5, 60, 12, 1, 25];
    let tokens: Vec<(Duration, String)> = schedule_ms.iter().enumerate().map(|(i, d)| (Duration::from_millis(*d), format!("t{i} "))).collect();
    let s = TestServer::start_isolated(move |i, _| {
        if i == 0 {
            // Warm-up: opens the pooled connection, so connecting is not part of the figures.
            return Reply::chat_stream(&[(Duration::ZERO, "warm")]);
        }
        let t: Vec<(Duration, &str)> = tokens.iter().map(|(d, s)| (*d, s.as_str())).collect();
        Reply::chat_stream(&t)
    });
    let b = llmtest_openai::factory().create(&model("m", 1, json!({"base_url": s.base_url()})), &BackendContext::default()).unwrap();
    b.generate(&chat("warm up", 1)).await.unwrap();
    let rounds = 3;
    let mut worst: f64 = 0.0;
    for round in 1..=rounds {
        let r = b.generate(&chat("count", 1)).await.unwrap();
        let hit = &s.hits()[round];
        assert_eq!(r.choices[0].text, (0..schedule_ms.len()).map(|i| format!("t{i} ")).collect::<String>());
        // The server's instants, from the moment it had read the request.
        let writes: Vec<f64> = hit.writes.iter().take(schedule_ms.len()).map(|w| ms(w.duration_since(hit.received))).collect();
        let ttft = r.timings.ttft_ms.unwrap();
        let d = (ttft - writes[0]).abs();
        worst = worst.max(d);
        assert!(d <= TOLERANCE_MS, "round {round}: ttft {ttft:.3} ms, server wrote the first token at {:.3} ms", writes[0]);
        assert_eq!(r.timings.ttfa_ms, r.timings.ttft_ms);
        assert_eq!(r.timings.gaps_ms.len(), schedule_ms.len() - 1);
        for (i, g) in r.timings.gaps_ms.iter().enumerate() {
            let expect = writes[i + 1] - writes[i];
            let d = (g - expect).abs();
            worst = worst.max(d);
            assert!(d <= TOLERANCE_MS, "round {round}: gap {i} measured {g:.3} ms, server {expect:.3} ms");
        }
        // And the server kept to its schedule, so the figures mean what the test says.
        assert!((writes[0] - 150.0).abs() < 20.0, "{writes:?}");
    }
    eprintln!("timing: worst deviation from the server's emit instants {worst:.3} ms over {rounds} streams");
}
