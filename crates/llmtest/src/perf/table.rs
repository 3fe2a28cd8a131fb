//! The seeds' latency table in Markdown: per perf suite × model, one row per prompt length ×
//! load, with the model's resource facts under it.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::results::{CaseResult, RunResults};

use super::metrics::num;

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "∞".into(), num)
}

/// The latency table's columns (the last one is the case's mark).
pub(crate) const COLUMNS: [&str; 12] = [
    "prompt tokens",
    "load",
    "requests",
    "failed",
    "TTFT median / p90 / p99 ms",
    "TPOT median / p90 ms",
    "ITL median ms",
    "E2E median / p99 ms",
    "output tok/s",
    "req/s",
    "goodput/s",
    "",
];

/// The columns of the server's own timings of the same requests (medians).
pub(crate) const SERVER_COLUMNS: [&str; 6] = [
    "prompt tokens",
    "concurrency",
    "TTFT ms",
    "server prompt processing ms",
    "TPOT ms",
    "server ms per token",
];

/// One perf suite on one model: a row per prompt length × load, in that order, the server's
/// own timings where it reports them, and the resource facts in words. Cells are plain text.
pub(crate) struct PerfTable {
    pub suite: String,
    pub model: String,
    pub rows: Vec<[String; 12]>,
    pub server: Vec<[String; 6]>,
    pub resources: Vec<String>,
}

/// The perf tables of a run, by suite then model; empty when it ran no perf case.
pub(crate) fn tables(results: &RunResults) -> Vec<PerfTable> {
    let mut groups: BTreeMap<(&str, &str), Vec<&CaseResult>> = BTreeMap::new();
    for c in &results.cases {
        if c.perf.is_some() {
            groups.entry((&c.suite, &c.model)).or_default().push(c);
        }
    }
    let mut out = Vec::new();
    for ((suite, model), cases) in groups {
        let mut ordered = cases.clone();
        ordered.sort_by_key(|c| {
            let p = c.perf.as_ref().expect("filtered");
            (
                p.prompt_tokens_target.unwrap_or(0),
                p.concurrency.unwrap_or(0),
                (p.request_rate.unwrap_or(0.0) * 1000.0) as u64,
            )
        });
        let rows = ordered
            .iter()
            .map(|c| {
                let p = c.perf.as_ref().expect("filtered");
                let prompt = match (p.prompt_tokens_target, p.prompt_tokens_mean) {
                    (Some(t), Some(m)) => format!("{t} ({} sent)", num(m)),
                    (Some(t), None) => t.to_string(),
                    (None, Some(m)) => format!("file ({} mean)", num(m)),
                    (None, None) => "file".into(),
                };
                let load = match (p.concurrency, p.request_rate) {
                    (Some(c), None) => format!("concurrency {c}"),
                    (None, Some(r)) => format!("{r} req/s"),
                    (Some(c), Some(r)) => format!("{r} req/s, ≤ {c}"),
                    (None, None) => "—".into(),
                };
                let failed = if p.errors.is_empty() {
                    p.failed.to_string()
                } else {
                    let kinds: Vec<String> =
                        p.errors.iter().map(|(k, n)| format!("{n} {k}")).collect();
                    format!("{} ({})", p.failed, kinds.join(", "))
                };
                let mark = match c.outcome {
                    llmtest_grade::Outcome::Pass => "✅",
                    llmtest_grade::Outcome::Fail => "❌",
                    _ => "⚠️",
                };
                [
                    prompt,
                    load,
                    p.requests.to_string(),
                    failed,
                    format!(
                        "{} / {} / {}",
                        ms(p.ttft_ms.median),
                        ms(p.ttft_ms.p90),
                        ms(p.ttft_ms.p99)
                    ),
                    format!("{} / {}", ms(p.tpot_ms.median), ms(p.tpot_ms.p90)),
                    ms(p.itl_ms.median),
                    format!("{} / {}", ms(p.e2e_ms.median), ms(p.e2e_ms.p99)),
                    num(p.output_tokens_per_s),
                    num(p.requests_per_s),
                    p.goodput_per_s.map_or("—".into(), num),
                    mark.to_owned(),
                ]
            })
            .collect();
        let server = ordered
            .iter()
            .filter_map(|c| {
                let p = c.perf.as_ref()?;
                let (sp, st) = (p.server_prompt_ms.as_ref()?, p.server_tpot_ms.as_ref()?);
                Some([
                    p.prompt_tokens_target
                        .map_or("file".into(), |t| t.to_string()),
                    p.concurrency.map_or("—".into(), |c| c.to_string()),
                    ms(p.ttft_ms.median),
                    ms(sp.median),
                    ms(p.tpot_ms.median),
                    ms(st.median),
                ])
            })
            .collect();
        out.push(PerfTable {
            suite: suite.to_owned(),
            model: model.to_owned(),
            rows,
            server,
            resources: resources(results, model, &ordered),
        });
    }
    out
}

/// The model's resource facts in words: server start-up and memory, GPU memory, this
/// process's peak RSS over the scenarios.
fn resources(results: &RunResults, model: &str, cases: &[&CaseResult]) -> Vec<String> {
    let facts = results
        .models
        .iter()
        .find(|m| m.name == model)
        .map(|m| &m.facts);
    let mut res = Vec::new();
    let pick = |k: &str| facts.and_then(|f| f.get(k)).and_then(|v| v.as_f64());
    if let Some(t) = pick("server_time_to_ready_s") {
        res.push(format!("server ready in {} s", num(t)));
    }
    if let Some(m) = pick("server_peak_rss_mib") {
        res.push(format!("server peak RSS {} MiB", num(m)));
    }
    for (k, label) in [
        ("gpu_memory_after_load_mib", "GPU memory after load"),
        ("gpu_memory_peak_mib", "GPU memory peak"),
    ] {
        if let Some(m) = pick(k) {
            res.push(format!("{label} {} MiB", num(m)));
        }
    }
    let own = cases
        .iter()
        .filter_map(|c| {
            c.perf
                .as_ref()?
                .resources
                .get("llmtest_peak_rss_mib")?
                .as_f64()
        })
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    if let Some(m) = own {
        res.push(format!("llmtest process peak RSS {} MiB", num(m)));
    }
    res
}

/// A Markdown table: `head`, the alignment row, then `rows`.
fn md_table<const N: usize>(out: &mut String, head: &[&str; N], align: &str, rows: &[[String; N]]) {
    let _ = writeln!(out, "| {} |\n{align}", head.join(" | "));
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
}

/// The perf tables of a run in Markdown; empty when it ran no perf case.
pub(crate) fn markdown(results: &RunResults) -> String {
    let mut out = String::new();
    for t in tables(results) {
        let _ = writeln!(out, "\n### {} on {}\n", t.suite, t.model);
        md_table(
            &mut out,
            &COLUMNS,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
            &t.rows,
        );
        if !t.server.is_empty() {
            out.push_str("\nThe server's own timings of the same requests (medians):\n\n");
            md_table(
                &mut out,
                &SERVER_COLUMNS,
                "|---:|---:|---:|---:|---:|---:|",
                &t.server,
            );
        }
        if !t.resources.is_empty() {
            let _ = writeln!(out, "\n{}.", t.resources.join("; "));
        }
    }
    out
}
