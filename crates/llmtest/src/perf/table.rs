//! The seeds' latency table in Markdown: per perf suite × model, one row per prompt length ×
//! load, with the model's resource facts under it.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::results::{CaseResult, RunResults};

use super::metrics::num;

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "∞".into(), num)
}

/// The perf tables of a run; empty when it ran no perf case.
pub(crate) fn markdown(results: &RunResults) -> String {
    let mut groups: BTreeMap<(&str, &str), Vec<&CaseResult>> = BTreeMap::new();
    for c in &results.cases {
        if c.perf.is_some() {
            groups.entry((&c.suite, &c.model)).or_default().push(c);
        }
    }
    let mut out = String::new();
    for ((suite, model), cases) in groups {
        let _ = writeln!(out, "\n### {suite} on {model}\n");
        out.push_str(
            "| prompt tokens | load | requests | failed | TTFT median / p90 / p99 ms | TPOT median / p90 ms | ITL median ms | E2E median / p99 ms | output tok/s | req/s | goodput/s | |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        let mut ordered = cases.clone();
        ordered.sort_by_key(|c| {
            let p = c.perf.as_ref().expect("filtered");
            (
                p.prompt_tokens_target.unwrap_or(0),
                p.concurrency.unwrap_or(0),
                (p.request_rate.unwrap_or(0.0) * 1000.0) as u64,
            )
        });
        for c in &ordered {
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
                let kinds: Vec<String> = p.errors.iter().map(|(k, n)| format!("{n} {k}")).collect();
                format!("{} ({})", p.failed, kinds.join(", "))
            };
            let mark = match c.outcome {
                llmtest_grade::Outcome::Pass => "✅",
                llmtest_grade::Outcome::Fail => "❌",
                _ => "⚠️",
            };
            let _ = writeln!(
                out,
                "| {prompt} | {load} | {} | {failed} | {} / {} / {} | {} / {} | {} | {} / {} | {} | {} | {} | {mark} |",
                p.requests,
                ms(p.ttft_ms.median),
                ms(p.ttft_ms.p90),
                ms(p.ttft_ms.p99),
                ms(p.tpot_ms.median),
                ms(p.tpot_ms.p90),
                ms(p.itl_ms.median),
                ms(p.e2e_ms.median),
                ms(p.e2e_ms.p99),
                num(p.output_tokens_per_s),
                num(p.requests_per_s),
                p.goodput_per_s.map_or("—".into(), num),
            );
        }
        let own: Vec<String> = ordered
            .iter()
            .filter_map(|c| {
                let p = c.perf.as_ref()?;
                let (sp, st) = (p.server_prompt_ms.as_ref()?, p.server_tpot_ms.as_ref()?);
                Some(format!(
                    "| {} | {} | {} | {} | {} | {} |",
                    p.prompt_tokens_target.map_or("file".into(), |t| t.to_string()),
                    p.concurrency.map_or("—".into(), |c| c.to_string()),
                    ms(p.ttft_ms.median),
                    ms(sp.median),
                    ms(p.tpot_ms.median),
                    ms(st.median),
                ))
            })
            .collect();
        if !own.is_empty() {
            out.push_str(
                "\nThe server's own timings of the same requests (medians):\n\n\
                 | prompt tokens | concurrency | TTFT ms | server prompt processing ms | TPOT ms | server ms per token |\n\
                 |---:|---:|---:|---:|---:|---:|\n",
            );
            for l in own {
                let _ = writeln!(out, "{l}");
            }
        }
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
        if !res.is_empty() {
            let _ = writeln!(out, "\n{}.", res.join("; "));
        }
    }
    out
}
