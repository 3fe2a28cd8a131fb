//! `perf:` suites: load tests in the manner of `vllm bench serve`. Each prompt length ×
//! concurrency (or request rate) is one case; the runner sends `requests` prompts of that
//! length, measures every request and grades the figures with the bounds of `expect`.
//!
//! ```yaml
//! version: 1
//! suite: latency
//! mode: completion
//! perf:
//!   prompt_tokens: [256, 1024]     # synthetic prompts, sized with the model's tokenizer
//!   output_tokens: 32              # exact with ignore_eos (default true)
//!   concurrency: [1, 4, 8]
//!   requests: 32
//!   warmup: 2
//!   slo: {ttft_ms: 500, tpot_ms: 50}
//!   expect:
//!     ttft_p90_ms: {max: 500}
//!     output_tokens_per_s: {min: 100}
//! ```
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `prompt_tokens` | — | prompt lengths in tokens, one scenario row each |
//! | `prompts_from` | — | instead: a file of prompts (JSONL with a `prompt` field, or one prompt per line), relative to the suite file |
//! | `output_tokens` | 128 | `max_tokens` of every request |
//! | `ignore_eos` | true | ask the server to keep generating past end-of-sequence (`extra_body.ignore_eos`), so output lengths are exact |
//! | `concurrency` | `[1]` | requests in flight at once; a list sweeps |
//! | `request_rate` | — | requests per second (Poisson arrivals, or gamma with `burstiness`); a list sweeps; with `concurrency` too, that caps the requests in flight |
//! | `burstiness` | 1 | gamma shape of the arrival gaps: 1 is Poisson, < 1 burstier, > 1 more even |
//! | `requests` | 32 | measured requests per scenario |
//! | `duration_s` | — | stop sending new requests after this long (those sent are awaited) |
//! | `warmup` | 1 | requests sent before measuring, not counted |
//! | `timeout_s` | 300 | a request still running after this is counted as timed out |
//! | `seed` | 0 | seeds the synthetic prompts and the arrival times |
//! | `slo` | — | `ttft_ms`, `tpot_ms`, `e2e_ms`: a request meeting all of them counts for goodput |
//! | `expect` | `failed: {max: 0}` | bounds on the metrics (`{min: …}`, `{max: …}`) |

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::diag::Loc;

/// The `perf:` block as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerfDef {
    /// Prompt lengths in tokens, one scenario row each.
    #[serde(default)]
    pub prompt_tokens: Vec<u32>,
    /// A file of prompts instead of synthetic ones (JSONL with a `prompt` field, or one prompt
    /// per line), relative to the suite file.
    #[serde(default)]
    pub prompts_from: Option<String>,
    /// `max_tokens` of every request (default 128).
    #[serde(default)]
    pub output_tokens: Option<u32>,
    /// Keep generating past end-of-sequence so output lengths are exact (default true).
    #[serde(default)]
    pub ignore_eos: Option<bool>,
    /// Requests in flight at once; a list sweeps (default `[1]`).
    #[serde(default)]
    pub concurrency: Vec<u32>,
    /// Requests per second (Poisson arrivals, gamma with `burstiness`); a list sweeps.
    #[serde(default)]
    pub request_rate: Vec<f64>,
    /// Gamma shape of the arrival gaps: 1 is Poisson, below 1 burstier (default 1).
    #[serde(default)]
    pub burstiness: Option<f64>,
    /// Measured requests per scenario (default 32).
    #[serde(default)]
    pub requests: Option<u32>,
    /// Stop sending new requests after this many seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Requests sent before measuring, not counted (default 1).
    #[serde(default)]
    pub warmup: Option<u32>,
    /// A request still running after this many seconds is counted as timed out (default 300).
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Seeds the synthetic prompts and the arrival times (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Service-level objectives: a request meeting all of them counts for goodput.
    #[serde(default)]
    pub slo: Slo,
    /// Bounds on the metrics, e.g. `ttft_p90_ms: {max: 500}` (default `failed: {max: 0}`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Bound>")]
    pub expect: BTreeMap<String, Spanned<Bound>>,
}

/// Service-level objectives of one request, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
}

impl Slo {
    pub fn is_empty(&self) -> bool {
        self.ttft_ms.is_none() && self.tpot_ms.is_none() && self.e2e_ms.is_none()
    }
}

/// A bound on one metric.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A resolved perf suite.
#[derive(Clone, Debug)]
pub struct PerfSpec {
    /// One per case, in case order.
    pub scenarios: Vec<Scenario>,
    /// Prompts read from `prompts_from`, when given.
    pub prompts: Option<Vec<String>>,
    pub prompts_file: Option<PathBuf>,
    pub output_tokens: u32,
    pub ignore_eos: bool,
    pub burstiness: f64,
    pub requests: u32,
    pub duration_s: Option<f64>,
    pub warmup: u32,
    pub timeout_s: f64,
    pub seed: u64,
    pub slo: Slo,
    /// Bounds, in metric-name order.
    pub checks: Vec<PerfCheck>,
    /// Where `perf:` is written.
    pub loc: Loc,
}

impl PerfSpec {
    pub fn scenario(&self, case_id: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.id == case_id)
    }
}

/// One prompt length × load: a case of a perf suite.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The case id: `p1024-c4`, `p1024-r2.5`, `prompts-c1`.
    pub id: String,
    /// Target prompt length in tokens (`None`: prompts from a file).
    pub prompt_tokens: Option<u32>,
    /// Requests in flight at most (`None`: unbounded, with a request rate).
    pub concurrency: Option<u32>,
    /// Requests per second (`None`: send as fast as `concurrency` allows).
    pub request_rate: Option<f64>,
}

/// A bound on one metric, checked after the scenario ran.
#[derive(Clone, Debug, PartialEq)]
pub struct PerfCheck {
    pub metric: String,
    pub bound: Bound,
    pub loc: Loc,
}

/// Latency figures that have distributions, each with these statistics.
pub const PERF_DISTRIBUTIONS: &[&str] = &["ttft", "ttfa", "tpot", "itl", "e2e"];
/// Statistics of each distribution, in metric names `<distribution>_<stat>_ms`.
pub const PERF_STATS: &[&str] = &["mean", "median", "p90", "p95", "p99"];
/// Metrics that are single numbers.
pub const PERF_SCALARS: &[&str] = &[
    "output_tokens_per_s",
    "total_tokens_per_s",
    "requests_per_s",
    "goodput_per_s",
    "failed",
    "failed_ratio",
    "timed_out",
];

/// Every metric name `expect:` accepts.
pub fn perf_metric_names() -> Vec<String> {
    let mut out: Vec<String> = PERF_DISTRIBUTIONS
        .iter()
        .flat_map(|d| PERF_STATS.iter().map(move |s| format!("{d}_{s}_ms")))
        .collect();
    out.extend(PERF_SCALARS.iter().map(|s| s.to_string()));
    out
}

/// The case id of a scenario.
pub(crate) fn scenario_id(
    prompt_tokens: Option<u32>,
    concurrency: Option<u32>,
    rate: Option<f64>,
) -> String {
    let mut id = match prompt_tokens {
        Some(p) => format!("p{p}"),
        None => "prompts".to_string(),
    };
    if let Some(c) = concurrency {
        id.push_str(&format!("-c{c}"));
    }
    if let Some(r) = rate {
        id.push_str(&format!("-r{r}"));
    }
    id
}

/// Reads a prompts file: JSONL objects with a `prompt` string, or one prompt per line.
pub(crate) fn read_prompts(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read prompts: {e}"))?;
    let jsonl = path.extension().and_then(|e| e.to_str()) == Some("jsonl");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if jsonl {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", i + 1))?;
            match v.get("prompt").and_then(|p| p.as_str()) {
                Some(p) => out.push(p.to_owned()),
                None => return Err(format!("line {}: no string field `prompt`", i + 1)),
            }
        } else {
            out.push(line.to_owned());
        }
    }
    if out.is_empty() {
        return Err("the prompts file holds no prompts".into());
    }
    Ok(out)
}

/// A problem found while resolving `perf:` (the loader adds the source line).
pub(crate) type PerfError = (Loc, String, Option<String>);

/// Resolves `perf:` and builds its cases (only `only_case`, when given).
pub(crate) fn resolve(
    def: &Spanned<PerfDef>,
    rel: &std::path::Path,
    root: &std::path::Path,
    mode: crate::types::Mode,
    params: &crate::types::GenParams,
    only_case: Option<&str>,
    errs: &mut Vec<PerfError>,
) -> (PerfSpec, Vec<crate::model::Case>) {
    let l = Loc::from_saphyr(rel, &def.referenced);
    let d = &def.value;
    let mut err =
        |msg: String, hint: Option<&str>| errs.push((l.clone(), msg, hint.map(Into::into)));
    let (prompts, prompts_file) = match &d.prompts_from {
        Some(p) => {
            let data_rel = rel.parent().unwrap_or(std::path::Path::new("")).join(p);
            match read_prompts(&root.join(&data_rel)) {
                Ok(ps) => (Some(ps), Some(data_rel)),
                Err(e) => {
                    err(
                        format!("`prompts_from: {p}`: {e}"),
                        Some("paths are relative to the suite file"),
                    );
                    (None, Some(data_rel))
                }
            }
        }
        None => (None, None),
    };
    let lengths: Vec<Option<u32>> = match (d.prompt_tokens.is_empty(), d.prompts_from.is_some()) {
        (true, false) => {
            err(
                "a perf suite needs `prompt_tokens` or `prompts_from`".into(),
                Some("e.g. `prompt_tokens: [1024, 4096]`"),
            );
            Vec::new()
        }
        (false, true) => {
            err(
                "`prompt_tokens` and `prompts_from` exclude each other".into(),
                Some("keep one"),
            );
            Vec::new()
        }
        (true, true) => vec![None],
        (false, false) => d.prompt_tokens.iter().map(|p| Some(*p)).collect(),
    };
    if d.prompt_tokens.contains(&0) {
        err("`prompt_tokens` values must be ≥ 1".into(), None);
    }
    if d.concurrency.contains(&0) {
        err("`concurrency` values must be ≥ 1".into(), None);
    }
    if d.request_rate.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        err(
            "`request_rate` values must be finite and > 0 (requests per second)".into(),
            Some("leave it out to send as fast as `concurrency` allows"),
        );
    }
    let burstiness = d.burstiness.unwrap_or(1.0);
    if !(burstiness.is_finite() && burstiness > 0.0) {
        err(
            "`burstiness` must be finite and > 0".into(),
            Some("1 is a Poisson process"),
        );
    }
    let output_tokens = d.output_tokens.unwrap_or(128);
    let requests = d.requests.unwrap_or(32);
    if output_tokens == 0 || requests == 0 {
        err("`output_tokens` and `requests` must be ≥ 1".into(), None);
    }
    let timeout_s = d.timeout_s.unwrap_or(300.0);
    if !(timeout_s.is_finite() && timeout_s > 0.0) {
        err("`timeout_s` must be finite and > 0".into(), None);
    }
    if d.duration_s.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
        err("`duration_s` must be finite and > 0".into(), None);
    }
    for (name, v) in [
        ("ttft_ms", d.slo.ttft_ms),
        ("tpot_ms", d.slo.tpot_ms),
        ("e2e_ms", d.slo.e2e_ms),
    ] {
        if v.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
            err(format!("`slo.{name}` must be finite and > 0"), None);
        }
    }
    let known = perf_metric_names();
    let mut checks = Vec::new();
    for (metric, b) in &d.expect {
        let bl = Loc::from_saphyr(rel, &b.referenced);
        if !known.iter().any(|k| k == metric) {
            errs.push((
                bl.clone(),
                format!("unknown perf metric `{metric}`"),
                Some(crate::diag::unknown_name_hint(
                    metric,
                    known.iter().map(String::as_str),
                )),
            ));
            continue;
        }
        if b.value.min.is_none() && b.value.max.is_none() {
            errs.push((
                bl.clone(),
                format!("`{metric}` has no bound"),
                Some("write `{max: …}` or `{min: …}`".into()),
            ));
        }
        if metric == "goodput_per_s" && d.slo.is_empty() {
            errs.push((
                bl.clone(),
                "`goodput_per_s` needs `slo:`".into(),
                Some("e.g. `slo: {ttft_ms: 500, tpot_ms: 50}`".into()),
            ));
        }
        checks.push(PerfCheck {
            metric: metric.clone(),
            bound: b.value.clone(),
            loc: bl,
        });
    }
    if !d.expect.contains_key("failed") && !d.expect.contains_key("failed_ratio") {
        // Failures under load are what a stability check is for: none are allowed unless the
        // suite says how many.
        checks.push(PerfCheck {
            metric: "failed".into(),
            bound: Bound {
                min: None,
                max: Some(0.0),
            },
            loc: l.clone(),
        });
    }
    let loads: Vec<(Option<u32>, Option<f64>)> =
        match (d.concurrency.is_empty(), d.request_rate.is_empty()) {
            (true, true) => vec![(Some(1), None)],
            (false, true) => d.concurrency.iter().map(|c| (Some(*c), None)).collect(),
            (true, false) => d.request_rate.iter().map(|r| (None, Some(*r))).collect(),
            (false, false) => d
                .concurrency
                .iter()
                .flat_map(|c| d.request_rate.iter().map(move |r| (Some(*c), Some(*r))))
                .collect(),
        };
    let mut scenarios = Vec::new();
    for p in &lengths {
        for (c, r) in &loads {
            scenarios.push(Scenario {
                id: scenario_id(*p, *c, *r),
                prompt_tokens: *p,
                concurrency: *c,
                request_rate: *r,
            });
        }
    }
    scenarios.retain(|s| only_case.is_none_or(|only| only == s.id));
    let mut case_params = params.clone();
    case_params.max_tokens = Some(output_tokens);
    let ignore_eos = d.ignore_eos.unwrap_or(true);
    if ignore_eos {
        case_params
            .extra_body
            .insert("ignore_eos".into(), serde_json::Value::Bool(true));
    }
    let cases = scenarios
        .iter()
        .map(|s| {
            let mut vars = serde_json::Map::new();
            if let Some(p) = s.prompt_tokens {
                vars.insert("prompt_tokens".into(), p.into());
            }
            if let Some(c) = s.concurrency {
                vars.insert("concurrency".into(), c.into());
            }
            if let Some(r) = s.request_rate {
                vars.insert("request_rate".into(), r.into());
            }
            crate::model::Case {
                id: s.id.clone(),
                // Prompts are made per request at run time (sized with the model's tokenizer).
                prompt: match mode {
                    crate::types::Mode::Completion => {
                        crate::types::Prompt::Completion(String::new())
                    }
                    crate::types::Mode::Chat => crate::types::Prompt::Chat(Vec::new()),
                },
                vars,
                expect: Vec::new(),
                weight: 1.0,
                threshold: None,
                samples: 1,
                tags: vec!["perf".into()],
                params: case_params.clone(),
                loc: l.clone(),
            }
        })
        .collect();
    let spec = PerfSpec {
        scenarios,
        prompts,
        prompts_file,
        output_tokens,
        ignore_eos,
        burstiness,
        requests,
        duration_s: d.duration_s,
        warmup: d.warmup.unwrap_or(1),
        timeout_s,
        seed: d.seed.unwrap_or(0),
        slo: d.slo.clone(),
        checks,
        loc: l,
    };
    (spec, cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_cover_distributions_and_scalars() {
        let names = perf_metric_names();
        assert!(names.contains(&"ttft_p90_ms".to_string()));
        assert!(names.contains(&"itl_median_ms".to_string()));
        assert!(names.contains(&"output_tokens_per_s".to_string()));
        assert_eq!(
            names.len(),
            PERF_DISTRIBUTIONS.len() * PERF_STATS.len() + PERF_SCALARS.len()
        );
    }

    #[test]
    fn scenario_ids() {
        assert_eq!(scenario_id(Some(1024), Some(4), None), "p1024-c4");
        assert_eq!(scenario_id(Some(8), None, Some(2.5)), "p8-r2.5");
        assert_eq!(scenario_id(None, Some(1), None), "prompts-c1");
    }
}
