//! Reports rendered from [`RunResults`] alone, so `llmtest report results.json` and
//! `llmtest run --format …` give the same page: JSON (the versioned results schema),
//! Markdown for a pull-request comment (`markdown.rs`), JUnit XML for CI dashboards
//! (`junit.rs`) and one self-contained HTML page (`html.rs`).
//!
//! Every format takes an optional baseline run; cases that passed in one and were answered
//! wrongly in the other are *flips*. Infrastructure errors and skips are never flips: they
//! say nothing about the model.

mod html;
mod junit;
mod markdown;

use std::collections::{BTreeMap, BTreeSet};

use llmtest_grade::Outcome;

use crate::results::{Cell, RunResults};
use crate::stats::{Z95, percentile, wilson};

pub use html::html;
pub use junit::junit;
pub use markdown::{MARKDOWN_LIMIT, markdown};

/// Output formats of `llmtest run --format` and `llmtest report --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Junit,
    Md,
    Html,
}

/// Renders a run in one format.
pub fn render(results: &RunResults, format: Format) -> String {
    render_with(results, None, format)
}

/// Writes the results as pretty JSON (secrets redacted) to `path` atomically, streamed: a
/// large run's text is never held in memory whole.
pub(crate) fn write_json(path: &std::path::Path, results: &RunResults) -> std::io::Result<()> {
    crate::results::write_atomic_with(path, |w| write_json_to(w, results))
}

/// The results as pretty JSON and a newline, secrets redacted, into `w`.
pub(crate) fn write_json_to(
    w: &mut dyn std::io::Write,
    results: &RunResults,
) -> std::io::Result<()> {
    let mut r = llmtest_backend::RedactingWriter::new(w);
    serde_json::to_writer_pretty(&mut r, results)?;
    std::io::Write::write_all(&mut r, b"\n")?;
    r.into_inner()?;
    Ok(())
}

/// Renders a run in one format, marking flips against `baseline` where the format shows them.
pub fn render_with(results: &RunResults, baseline: Option<&RunResults>, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(results).expect("results serialize") + "\n",
        Format::Md => markdown(results, baseline),
        Format::Junit => junit(results),
        Format::Html => html(results, baseline),
    }
}

/// `llmtest report RESULTS [--baseline OTHER] [--format F] [-o FILE]`: renders saved results
/// without running anything. Exit 2 for an unreadable or foreign file, 3 when the report
/// cannot be written.
pub(crate) fn command(
    results: &std::path::Path,
    baseline: Option<&std::path::Path>,
    format: Option<Format>,
    output: Option<&std::path::Path>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let read = |p: &std::path::Path| {
        RunResults::read(p).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })
    };
    let r = match read(results) {
        Ok(r) => r,
        Err(c) => return c,
    };
    let base = match baseline.map(read).transpose() {
        Ok(b) => b,
        Err(c) => return c,
    };
    let text = llmtest_backend::redact_secrets(render_with(
        &r,
        base.as_ref(),
        format.unwrap_or(Format::Html),
    ));
    match output {
        Some(p) => {
            if let Err(e) = crate::results::write_atomic(p, text.as_bytes()) {
                eprintln!("error: cannot write {}: {e}", p.display());
                return ExitCode::from(3);
            }
            eprintln!("llmtest: wrote {}", p.display());
        }
        None => {
            use std::io::Write as _;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    ExitCode::SUCCESS
}

/// The one-glyph mark of an outcome, shared by the Markdown and HTML tables.
pub(crate) fn mark(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "✅",
        Outcome::Fail => "❌",
        Outcome::UnterminatedReasoning => "❌💭",
        Outcome::CodeTimeout => "❌⏱",
        Outcome::CodeError => "❌💥",
        Outcome::InfraError => "⚠️",
        Outcome::Skipped => "⏭",
        _ if o.is_infra() => "⚠️",
        _ => "❔",
    }
}

/// Cases by kind: passed, wrong answers, not graded for infrastructure (judge included),
/// skipped.
pub(crate) fn tally(r: &RunResults) -> [usize; 4] {
    let mut t = [0; 4];
    for c in &r.cases {
        let i = match c.outcome {
            Outcome::Pass => 0,
            o if o.is_model_failure() => 1,
            o if o.is_infra() => 2,
            Outcome::Skipped => 3,
            _ => continue,
        };
        t[i] += 1;
    }
    t
}

/// Suites in name order.
pub(crate) fn suites(r: &RunResults) -> Vec<String> {
    let mut s: Vec<String> = r.cases.iter().map(|c| c.suite.clone()).collect();
    s.sort();
    s.dedup();
    s
}

/// The family a model belongs to: its name without a quantization or serving suffix, so
/// `Qwen2.5-7B`, `Qwen2.5-7B-AWQ` and `Qwen2.5-7B-int4` sit side by side.
pub(crate) fn family(model: &str) -> String {
    const SUFFIXES: &[&str] = &[
        "awq", "gptq", "int4", "int8", "w4a16", "w8a8", "fp8", "fp16", "bf16", "f16", "gguf",
        "onnx", "llamacpp", "vllm", "sglang", "mlx", "exl2", "bnb",
    ];
    let mut name = model;
    while let Some(i) = name.rfind(['-', '@', ':']) {
        let tail = name[i + 1..].to_ascii_lowercase();
        // `q4_k_m`, `q8_0`, …: llama.cpp's quantization levels.
        let quant_level =
            tail.starts_with('q') && tail.chars().nth(1).is_some_and(|c| c.is_ascii_digit());
        // `awq4`, `int3`, `gptq8`: a known suffix with its bit width.
        let base = tail.trim_end_matches(|c: char| c.is_ascii_digit());
        let with_bits = base.len() < tail.len() && (base == "int" || SUFFIXES.contains(&base));
        if i == 0 || !(SUFFIXES.contains(&tail.as_str()) || quant_level || with_bits) {
            break;
        }
        name = &name[..i];
    }
    name.to_owned()
}

/// Models grouped by family, families and models in name order.
pub(crate) fn models_by_family(r: &RunResults) -> Vec<(String, Vec<String>)> {
    let mut fam: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in r.summary.matrix.keys() {
        fam.entry(family(m)).or_default().push(m.clone());
    }
    fam.into_iter().collect()
}

/// Pass rate over graded cases with its Wilson 95% interval; `None` when nothing was graded.
pub(crate) fn rate(c: &Cell) -> Option<(f64, f64, f64)> {
    let n = c.passed + c.failed;
    (n > 0).then(|| {
        let (lo, hi) = wilson(c.passed, n, Z95);
        (c.passed as f64 / n as f64, lo, hi)
    })
}

/// A case that passed in one run and was answered wrongly in the other.
pub(crate) struct Flip {
    pub suite: String,
    pub case: String,
    pub model: String,
    pub before: Outcome,
    pub after: Outcome,
}

impl Flip {
    pub fn regression(&self) -> bool {
        self.before == Outcome::Pass
    }
}

/// Flips of `r` against `base`, in name order.
pub(crate) fn flips(r: &RunResults, base: Option<&RunResults>) -> Vec<Flip> {
    let Some(base) = base else {
        return Vec::new();
    };
    let before: BTreeMap<(&str, &str, &str), Outcome> = base
        .cases
        .iter()
        .map(|c| {
            (
                (c.suite.as_str(), c.case.as_str(), c.model.as_str()),
                c.outcome,
            )
        })
        .collect();
    let mut out: Vec<Flip> = r
        .cases
        .iter()
        .filter_map(|c| {
            let b = *before.get(&(c.suite.as_str(), c.case.as_str(), c.model.as_str()))?;
            let graded = |o: Outcome| o == Outcome::Pass || o.is_model_failure();
            let flipped = graded(b)
                && graded(c.outcome)
                && (b == Outcome::Pass) != (c.outcome == Outcome::Pass);
            flipped.then(|| Flip {
                suite: c.suite.clone(),
                case: c.case.clone(),
                model: c.model.clone(),
                before: b,
                after: c.outcome,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.suite, &a.case, &a.model).cmp(&(&b.suite, &b.case, &b.model)));
    out
}

/// Live latency of one model: replayed figures are counted, never used.
#[derive(Default)]
pub(crate) struct Latency {
    pub ttft_ms: Vec<f64>,
    pub tokens_per_s: Vec<f64>,
    pub live: usize,
    pub replayed: usize,
}

impl Latency {
    pub fn p(v: &[f64], q: f64) -> Option<f64> {
        percentile(v, q)
    }
}

/// Latency per model, from the cases' timings.
pub(crate) fn latency(r: &RunResults) -> BTreeMap<String, Latency> {
    let mut out: BTreeMap<String, Latency> = BTreeMap::new();
    for c in &r.cases {
        let Some(t) = &c.timings else { continue };
        let l = out.entry(c.model.clone()).or_default();
        if t.replayed {
            l.replayed += 1;
            continue;
        }
        l.live += 1;
        l.ttft_ms.extend(t.ttft_ms);
        l.tokens_per_s.extend(t.tokens_per_s);
    }
    out
}

/// What the judges of one candidate model on one suite cost, kept apart from the
/// candidate's own tokens (which are summed over the same judged cases for comparison).
/// Replayed judge answers count their tokens (recorded with them) but not their time.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct JudgeCost {
    /// Cases whose assertions asked a judge.
    pub cases: usize,
    pub judges: BTreeSet<String>,
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Calls and summed end-to-end time of the judge requests made live.
    pub live_calls: u64,
    pub live_ms: f64,
    /// Judged cases whose judge answers came from cassettes.
    pub replayed_cases: usize,
    /// The candidate's own tokens on the same cases.
    pub candidate_prompt_tokens: u64,
    pub candidate_completion_tokens: u64,
}

impl JudgeCost {
    fn add(&mut self, o: &JudgeCost) {
        self.cases += o.cases;
        self.judges.extend(o.judges.iter().cloned());
        self.calls += o.calls;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.live_calls += o.live_calls;
        self.live_ms += o.live_ms;
        self.replayed_cases += o.replayed_cases;
        self.candidate_prompt_tokens += o.candidate_prompt_tokens;
        self.candidate_completion_tokens += o.candidate_completion_tokens;
    }

    /// The judge table's cells after the model and suite, as [`JUDGE_COLUMNS`] names them,
    /// unescaped.
    pub fn cells(&self) -> [String; 6] {
        let judges: Vec<&str> = self.judges.iter().map(String::as_str).collect();
        [
            self.cases.to_string(),
            judges.join(", "),
            self.calls.to_string(),
            format!("{} + {}", self.prompt_tokens, self.completion_tokens),
            judge_time(self),
            format!(
                "{} + {}",
                self.candidate_prompt_tokens, self.candidate_completion_tokens
            ),
        ]
    }

    /// Mean live judge latency per call, ms.
    pub fn ms_per_call(&self) -> Option<f64> {
        (self.live_calls > 0).then(|| self.live_ms / self.live_calls as f64)
    }
}

/// The judge table's column headings, in both the Markdown and the HTML report.
pub(crate) const JUDGE_COLUMNS: [&str; 8] = [
    "model",
    "suite",
    "judged cases",
    "judge",
    "calls",
    "judge tokens (prompt + completion)",
    "judge time",
    "candidate tokens (prompt + completion)",
];

/// Judge cost per (candidate model, suite), in name order; empty when no judge was asked.
pub(crate) fn judge_costs(r: &RunResults) -> BTreeMap<(String, String), JudgeCost> {
    let mut out: BTreeMap<(String, String), JudgeCost> = BTreeMap::new();
    for c in &r.cases {
        let Some(j) = c.judge.as_ref().filter(|j| j.calls > 0) else {
            continue;
        };
        let e = out.entry((c.model.clone(), c.suite.clone())).or_default();
        e.cases += 1;
        e.judges.extend(j.models.iter().cloned());
        e.calls += u64::from(j.calls);
        e.prompt_tokens += j.prompt_tokens;
        e.completion_tokens += j.completion_tokens;
        if j.replayed {
            e.replayed_cases += 1;
        } else {
            e.live_calls += u64::from(j.calls);
            e.live_ms += j.total_ms;
        }
        if let Some(u) = &c.usage {
            e.candidate_prompt_tokens += u.prompt_tokens.unwrap_or(0);
            e.candidate_completion_tokens += u.completion_tokens.unwrap_or(0);
        }
    }
    out
}

/// All judge calls of a run added up; `None` when no judge was asked.
pub(crate) fn judge_total(r: &RunResults) -> Option<JudgeCost> {
    let costs = judge_costs(r);
    (!costs.is_empty()).then(|| {
        let mut t = JudgeCost::default();
        for c in costs.values() {
            t.add(c);
        }
        t
    })
}

/// How long the judge calls of `c` took, in words: live time and its mean per call, and
/// how many cases were replayed (their time is not a latency).
pub(crate) fn judge_time(c: &JudgeCost) -> String {
    let live = c.ms_per_call().map(|per| {
        format!(
            "{:.1} s over {} live call(s), {per:.0} ms/call",
            c.live_ms / 1000.0,
            c.live_calls
        )
    });
    let replayed =
        (c.replayed_cases > 0).then(|| format!("{} case(s) replayed, not timed", c.replayed_cases));
    match (live, replayed) {
        (Some(l), Some(r)) => format!("{l}; {r}"),
        (Some(l), None) => l,
        (None, Some(r)) => r,
        (None, None) => "–".into(),
    }
}

/// The console's line about judge calls, apart from the candidates' figures.
pub(crate) fn judge_summary(r: &RunResults) -> Option<String> {
    let t = judge_total(r)?;
    let judges: Vec<&str> = t.judges.iter().map(String::as_str).collect();
    Some(format!(
        "judge{}: {} call(s) for {} case(s), {} prompt + {} completion tokens (the candidates' on those cases: {} + {}); {}",
        if judges.is_empty() {
            String::new()
        } else {
            format!(" {}", judges.join(", "))
        },
        t.calls,
        t.cases,
        t.prompt_tokens,
        t.completion_tokens,
        t.candidate_prompt_tokens,
        t.candidate_completion_tokens,
        judge_time(&t),
    ))
}

#[cfg(test)]
mod tests;
