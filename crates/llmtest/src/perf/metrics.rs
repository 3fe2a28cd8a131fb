//! The figures of one perf scenario, with the definitions of `vllm bench serve`
//! (`vllm/benchmarks/serve.py`, `calculate_metrics`):
//!
//! - TTFT: request sent → first token (any channel); TTFA: → first answer token (after the
//!   reasoning of reasoning models).
//! - TPOT of a request: `(E2E − TTFT) / (output tokens − 1)`, for requests with > 1 token.
//! - ITL: every gap between successive streamed chunks, pooled over all requests.
//! - E2E: request sent → last byte.
//! - Throughputs divide by the scenario's wall time (first request sent → last finished):
//!   output tokens/s, (input + output) tokens/s, completed requests/s, and goodput: requests
//!   that met every SLO per second.
//!
//! One difference, on purpose: vLLM leaves failed requests out of its percentiles; here a
//! failed or timed-out request ranks above every measured value in the TTFT, TTFA, TPOT, ITL
//! and E2E percentiles, so a p99 over a run where more than 1% of requests failed is
//! "beyond every measured value" (`null` in JSON, `∞` in tables), never a flattering number.
//! Means and standard deviations are over completed requests only, as in vLLM.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use llmtest_spec::{PerfCheck, Slo};

/// What happened to one measured request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RequestRecord {
    pub outcome: Result<Measured, Failure>,
}

/// A completed request's figures.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Measured {
    pub ttft_ms: Option<f64>,
    pub ttfa_ms: Option<f64>,
    pub e2e_ms: f64,
    pub gaps_ms: Vec<f64>,
    pub prompt_tokens: Option<u64>,
    pub output_tokens: u64,
    /// The server's own measurement, when it reports one (llama.cpp's `timings`): prompt
    /// processing and time per generated token, ms.
    pub server_prompt_ms: Option<f64>,
    pub server_tpot_ms: Option<f64>,
}

/// A failed request: the infrastructure error's kind and message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Failure {
    pub kind: String,
    pub message: String,
}

/// Mean, spread and percentiles of one latency figure, in ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Distribution {
    /// Values measured (completed requests; for ITL, gaps).
    pub n: usize,
    /// Over completed requests only; `null` when none completed.
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// Percentiles over every request, failed ones ranked last; `null`: beyond every
    /// measured value (too many failures).
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// One perf scenario on one model: the results file's `perf` object of a case.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PerfReport {
    /// Target prompt length (absent with prompts from a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_target: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<f64>,
    pub burstiness: f64,
    /// How the prompts were sized: `tokenizer` (the model's own), `approximation` (4
    /// characters per token), `file`.
    pub prompts: String,
    /// Measured requests sent, completed, failed (timed-out included), timed out.
    pub requests: usize,
    pub completed: usize,
    pub failed: usize,
    pub timed_out: usize,
    /// Failed requests by infrastructure kind (`timeout`, `server`, `connection`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// First request sent → last request finished, s.
    pub duration_s: f64,
    /// Most requests in flight at once.
    pub peak_in_flight: usize,
    /// Mean prompt length as the server counted it, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_mean: Option<f64>,
    pub output_tokens_mean: Option<f64>,
    pub input_tokens_total: u64,
    pub output_tokens_total: u64,
    pub ttft_ms: Distribution,
    pub ttfa_ms: Distribution,
    pub tpot_ms: Distribution,
    pub itl_ms: Distribution,
    pub e2e_ms: Distribution,
    /// The server's own figures for the same requests (llama.cpp: `timings.prompt_ms`,
    /// `timings.predicted_per_token_ms`), to cross-check TTFT and TPOT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_prompt_ms: Option<Distribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_tpot_ms: Option<Distribution>,
    pub output_tokens_per_s: f64,
    pub total_tokens_per_s: f64,
    pub requests_per_s: f64,
    /// Requests that met every SLO, per second (absent without `slo:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Slo::is_empty")]
    pub slo: Slo,
    /// Start-up time, peak memory (RSS from /proc, GPU memory) of what served the requests.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub resources: Map<String, Value>,
}

/// The `q` quantile by numpy's linear interpolation, where infinite values are failures:
/// `None` when the interpolation touches one.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    if !sorted[hi].is_finite() {
        return None;
    }
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// `values` measured, `failures` requests that have none (ranked last in percentiles).
pub(crate) fn distribution(values: &[f64], failures: usize) -> Distribution {
    let n = values.len();
    let (mean, std) = if n == 0 {
        (None, None)
    } else {
        let m = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64;
        (Some(m), Some(var.sqrt()))
    };
    let mut all: Vec<f64> = values.to_vec();
    all.extend(std::iter::repeat_n(f64::INFINITY, failures));
    all.sort_by(|a, b| a.total_cmp(b));
    Distribution {
        n,
        mean,
        std,
        median: quantile(&all, 0.5),
        p90: quantile(&all, 0.9),
        p95: quantile(&all, 0.95),
        p99: quantile(&all, 0.99),
    }
}

impl Distribution {
    fn stat(&self, name: &str) -> Option<Option<f64>> {
        Some(match name {
            "mean" => self.mean,
            "median" => self.median,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            _ => return None,
        })
    }
}

/// The figures of a scenario from its records; `duration_s` is its wall time.
pub(crate) fn compute(records: &[RequestRecord], duration_s: f64, slo: &Slo) -> PerfReport {
    let mut r = PerfReport {
        requests: records.len(),
        duration_s,
        slo: slo.clone(),
        ..PerfReport::default()
    };
    let (mut ttft, mut ttfa, mut tpot, mut itl, mut e2e) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut prompt_sum, mut prompt_n) = (0u64, 0usize);
    let (mut srv_prompt, mut srv_tpot) = (Vec::new(), Vec::new());
    let mut good = 0usize;
    // Requests without a figure although they completed (one output token has no TPOT; a
    // backend that does not stream has no TTFT) are not failures: they are just absent.
    for rec in records {
        match &rec.outcome {
            Ok(m) => {
                r.completed += 1;
                r.output_tokens_total += m.output_tokens;
                if let Some(p) = m.prompt_tokens {
                    prompt_sum += p;
                    prompt_n += 1;
                }
                if let Some(t) = m.ttft_ms {
                    ttft.push(t);
                }
                if let Some(t) = m.ttfa_ms {
                    ttfa.push(t);
                }
                // vLLM: a request with ≤ 1 output token has TPOT 0 for goodput, none in stats.
                let own_tpot = match m.ttft_ms {
                    Some(t) if m.output_tokens > 1 => {
                        let v = (m.e2e_ms - t) / (m.output_tokens - 1) as f64;
                        tpot.push(v);
                        v
                    }
                    _ => 0.0,
                };
                itl.extend_from_slice(&m.gaps_ms);
                srv_prompt.extend(m.server_prompt_ms);
                srv_tpot.extend(m.server_tpot_ms);
                e2e.push(m.e2e_ms);
                let meets = |slo: Option<f64>, v: Option<f64>| {
                    slo.is_none_or(|s| v.is_some_and(|v| v <= s))
                };
                if meets(slo.ttft_ms, m.ttft_ms.or(Some(m.e2e_ms)))
                    && meets(slo.tpot_ms, Some(own_tpot))
                    && meets(slo.e2e_ms, Some(m.e2e_ms))
                {
                    good += 1;
                }
            }
            Err(f) => {
                r.failed += 1;
                if f.kind == "timeout" {
                    r.timed_out += 1;
                }
                *r.errors.entry(f.kind.clone()).or_default() += 1;
                if r.first_error.is_none() {
                    r.first_error = Some(format!("{}: {}", f.kind, f.message));
                }
            }
        }
    }
    r.input_tokens_total = prompt_sum;
    r.prompt_tokens_mean = (prompt_n > 0).then(|| prompt_sum as f64 / prompt_n as f64);
    r.output_tokens_mean =
        (r.completed > 0).then(|| r.output_tokens_total as f64 / r.completed as f64);
    let failed = r.failed;
    r.ttft_ms = distribution(&ttft, failed);
    r.ttfa_ms = distribution(&ttfa, failed);
    r.tpot_ms = distribution(&tpot, failed);
    r.itl_ms = distribution(&itl, failed);
    r.e2e_ms = distribution(&e2e, failed);
    r.server_prompt_ms = (!srv_prompt.is_empty()).then(|| distribution(&srv_prompt, failed));
    r.server_tpot_ms = (!srv_tpot.is_empty()).then(|| distribution(&srv_tpot, failed));
    let per_s = |x: f64| {
        if duration_s > 0.0 {
            x / duration_s
        } else {
            0.0
        }
    };
    r.output_tokens_per_s = per_s(r.output_tokens_total as f64);
    r.total_tokens_per_s = per_s((r.output_tokens_total + r.input_tokens_total) as f64);
    r.requests_per_s = per_s(r.completed as f64);
    r.goodput_per_s = (!slo.is_empty()).then(|| per_s(good as f64));
    r
}

/// A metric's value by its `expect:` name; `Some(None)`: beyond every measured value.
pub(crate) fn metric(r: &PerfReport, name: &str) -> Option<Option<f64>> {
    if let Some(rest) = name.strip_suffix("_ms")
        && let Some((dist, stat)) = rest.split_once('_')
    {
        let d = match dist {
            "ttft" => &r.ttft_ms,
            "ttfa" => &r.ttfa_ms,
            "tpot" => &r.tpot_ms,
            "itl" => &r.itl_ms,
            "e2e" => &r.e2e_ms,
            _ => return None,
        };
        return d.stat(stat);
    }
    Some(Some(match name {
        "output_tokens_per_s" => r.output_tokens_per_s,
        "total_tokens_per_s" => r.total_tokens_per_s,
        "requests_per_s" => r.requests_per_s,
        "goodput_per_s" => return Some(r.goodput_per_s),
        "failed" => r.failed as f64,
        "failed_ratio" => {
            if r.requests == 0 {
                0.0
            } else {
                r.failed as f64 / r.requests as f64
            }
        }
        "timed_out" => r.timed_out as f64,
        _ => return None,
    }))
}

/// One bound checked: `(pass, expected, found)`.
pub(crate) fn check(r: &PerfReport, c: &PerfCheck) -> (bool, String, String) {
    let mut expected = Vec::new();
    if let Some(min) = c.bound.min {
        expected.push(format!("≥ {}", num(min)));
    }
    if let Some(max) = c.bound.max {
        expected.push(format!("≤ {}", num(max)));
    }
    let expected = expected.join(" and ");
    match metric(r, &c.metric) {
        Some(Some(v)) => {
            let pass = c.bound.min.is_none_or(|m| v >= m) && c.bound.max.is_none_or(|m| v <= m);
            (pass, expected, num(v))
        }
        // Only latency percentiles are ever beyond every measured value: that meets any
        // minimum and no maximum.
        Some(None) if r.failed > 0 => (
            c.bound.max.is_none(),
            expected,
            format!("∞ ({} of {} requests failed)", r.failed, r.requests),
        ),
        Some(None) => (false, expected, "not measured".into()),
        None => (false, expected, "unknown metric".into()),
    }
}

/// A figure for people: 3 significant digits, no trailing zeros.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return "∞".into();
    }
    let a = v.abs();
    if a == 0.0 || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmtest_spec::Bound;

    fn ok(ttft: f64, e2e: f64, out: u64) -> RequestRecord {
        let gap = if out > 1 {
            (e2e - ttft) / (out - 1) as f64
        } else {
            0.0
        };
        RequestRecord {
            outcome: Ok(Measured {
                ttft_ms: Some(ttft),
                ttfa_ms: Some(ttft),
                e2e_ms: e2e,
                gaps_ms: vec![gap; out.saturating_sub(1) as usize],
                prompt_tokens: Some(100),
                output_tokens: out,
                server_prompt_ms: None,
                server_tpot_ms: None,
            }),
        }
    }

    fn failed(kind: &str) -> RequestRecord {
        RequestRecord {
            outcome: Err(Failure {
                kind: kind.into(),
                message: "x".into(),
            }),
        }
    }

    #[test]
    fn vllm_definitions_on_known_requests() {
        // TTFT 10, 20, 30, 40 ms; E2E = TTFT + 9 gaps of 5 ms → TPOT 5 ms exactly.
        let recs: Vec<_> = (1..=4)
            .map(|i| ok(10.0 * i as f64, 10.0 * i as f64 + 45.0, 10))
            .collect();
        let r = compute(&recs, 2.0, &Slo::default());
        assert_eq!((r.completed, r.failed), (4, 0));
        assert_eq!(r.ttft_ms.mean, Some(25.0));
        assert_eq!(r.ttft_ms.median, Some(25.0));
        // numpy.percentile([10,20,30,40], 90) = 37.0
        assert!((r.ttft_ms.p90.unwrap() - 37.0).abs() < 1e-9);
        assert!((r.tpot_ms.median.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(r.itl_ms.n, 36);
        assert_eq!(r.output_tokens_total, 40);
        assert_eq!(r.output_tokens_per_s, 20.0);
        assert_eq!(r.requests_per_s, 2.0);
        assert_eq!(r.total_tokens_per_s, 220.0);
        assert_eq!(r.prompt_tokens_mean, Some(100.0));
        assert_eq!(r.goodput_per_s, None);
    }

    #[test]
    fn failures_count_and_rank_last_in_percentiles() {
        let mut recs: Vec<_> = (0..8).map(|_| ok(10.0, 50.0, 5)).collect();
        recs.push(failed("timeout"));
        recs.push(failed("server"));
        let r = compute(&recs, 1.0, &Slo::default());
        assert_eq!(
            (r.requests, r.completed, r.failed, r.timed_out),
            (10, 8, 2, 1)
        );
        assert_eq!(r.errors.get("server"), Some(&1));
        assert_eq!(r.ttft_ms.median, Some(10.0));
        assert_eq!(r.ttft_ms.p90, None, "two failures of ten reach p90");
        assert_eq!(
            r.ttft_ms.mean,
            Some(10.0),
            "means are over completed requests"
        );
        let c = PerfCheck {
            metric: "ttft_p90_ms".into(),
            bound: Bound {
                min: None,
                max: Some(1000.0),
            },
            loc: Default::default(),
        };
        let (pass, _, found) = check(&r, &c);
        assert!(!pass, "a p90 beyond every measured value fails a maximum");
        assert!(found.contains("2 of 10 requests failed"), "{found}");
        let c = PerfCheck {
            metric: "failed".into(),
            bound: Bound {
                min: None,
                max: Some(0.0),
            },
            loc: Default::default(),
        };
        assert!(!check(&r, &c).0);
    }

    #[test]
    fn goodput_counts_requests_within_every_slo() {
        let recs = vec![
            ok(10.0, 100.0, 10),  // tpot 10
            ok(300.0, 390.0, 10), // ttft too slow
            ok(10.0, 280.0, 10),  // tpot 30: too slow
        ];
        let slo = Slo {
            ttft_ms: Some(200.0),
            tpot_ms: Some(20.0),
            e2e_ms: None,
        };
        let r = compute(&recs, 1.0, &slo);
        assert_eq!(r.goodput_per_s, Some(1.0));
    }

    #[test]
    fn bounds_pass_and_fail() {
        let recs: Vec<_> = (0..4).map(|_| ok(10.0, 50.0, 5)).collect();
        let r = compute(&recs, 1.0, &Slo::default());
        let b = |min, max| PerfCheck {
            metric: "output_tokens_per_s".into(),
            bound: Bound { min, max },
            loc: Default::default(),
        };
        assert!(check(&r, &b(Some(20.0), None)).0);
        let (pass, expected, found) = check(&r, &b(Some(21.0), None));
        assert!(!pass);
        assert_eq!((expected.as_str(), found.as_str()), ("≥ 21.0", "20.0"));
        assert!(check(&r, &b(None, Some(25.0))).0);
    }
}
