//! Markdown for a pull-request comment: the ✅/❌ matrix people build by hand (models as rows
//! grouped by family, suites as columns, pass rate with its Wilson 95% interval), flips
//! against a baseline, latency medians, what the judges of model-graded assertions cost
//! (apart from the candidates' figures), perf suites' latency tables (prompt length × load),
//! then per-suite case tables.
//!
//! GitHub refuses comments over 65,536 characters, so the page stays under
//! [`MARKDOWN_LIMIT`]: the summary sections always fit; case rows are added failing ones
//! first while they fit, and the page says how many were cut.

use std::fmt::Write as _;

use llmtest_grade::Outcome;

use super::{
    JUDGE_COLUMNS, JudgeCost, Latency, flips, judge_costs, judge_total, latency, mark,
    models_by_family, rate, suites,
};
use crate::results::{CaseResult, Cell, RunResults};

/// The most characters [`markdown`] writes (with room below GitHub's 65,536 limit).
pub const MARKDOWN_LIMIT: usize = 60_000;

/// At most this many flips are listed one by one.
const FLIP_ROWS: usize = 100;

/// The whole Markdown report, at most [`MARKDOWN_LIMIT`] characters.
pub fn markdown(r: &RunResults, baseline: Option<&RunResults>) -> String {
    let mut out = String::new();
    let [pass, wrong, infra, skipped] = super::tally(r);
    let _ = writeln!(
        out,
        "# llmtest results — profile `{}` ({})\n\n{} case(s): ✅ {} passed · ❌ {} failed · ⚠️ {} infrastructure · ⏭ {} skipped\n",
        r.profile, r.mode, r.summary.total, pass, wrong, infra, skipped
    );
    let flips = flips(r, baseline);
    matrix(&mut out, r, &flips);
    if baseline.is_some() {
        flip_section(&mut out, &flips);
    }
    latency_section(&mut out, r);
    judge_section(&mut out, r);
    let perf = crate::perf::markdown(r);
    if !perf.is_empty() {
        out.push_str("\n## Perf suites (live load runs)\n");
        out.push_str(&perf);
    }
    let legend = "\n✅ pass · ❌ wrong answer · 💭 ran out of tokens while thinking · ⏱ code timeout · 💥 code error · ⚠️ infrastructure error (not the model) · ⏭ skipped · pass rates over graded cases with Wilson 95% intervals\n";
    case_tables(
        &mut out,
        r,
        MARKDOWN_LIMIT.saturating_sub(legend.len() + 200),
    );
    out.push_str(legend);
    out
}

fn cell_text(c: &Cell, regressions: usize, fixes: usize) -> String {
    let mut cell = match rate(c) {
        Some((p, lo, hi)) => {
            let glyph = if c.failed == 0 { "✅" } else { "❌" };
            format!(
                "{glyph} {}/{} {:.0}% ({:.0}–{:.0})",
                c.passed,
                c.passed + c.failed,
                100.0 * p,
                100.0 * lo,
                100.0 * hi
            )
        }
        None => "–".into(),
    };
    if c.infra > 0 {
        let _ = write!(cell, " ⚠️{}", c.infra);
    }
    if c.skipped > 0 {
        let _ = write!(cell, " ⏭{}", c.skipped);
    }
    if regressions > 0 {
        let _ = write!(cell, " 🔻{regressions}");
    }
    if fixes > 0 {
        let _ = write!(cell, " 🔺{fixes}");
    }
    cell
}

fn matrix(out: &mut String, r: &RunResults, flips: &[super::Flip]) {
    let suites = suites(r);
    let _ = write!(out, "| family | model |");
    for s in &suites {
        let _ = write!(out, " {s} |");
    }
    let _ = write!(out, "\n|---|---|");
    for _ in &suites {
        out.push_str("---|");
    }
    out.push('\n');
    for (fam, models) in models_by_family(r) {
        for (i, m) in models.iter().enumerate() {
            let f = if i == 0 {
                format!("**{}**", esc(&fam))
            } else {
                String::new()
            };
            let _ = write!(out, "| {f} | {} |", esc(m));
            for s in &suites {
                let count = |reg: bool| {
                    flips
                        .iter()
                        .filter(|x| &x.model == m && &x.suite == s && x.regression() == reg)
                        .count()
                };
                match r.summary.matrix.get(m).and_then(|x| x.get(s)) {
                    Some(c) => {
                        let _ = write!(out, " {} |", cell_text(c, count(true), count(false)));
                    }
                    None => out.push_str(" |"),
                }
            }
            out.push('\n');
        }
    }
}

fn flip_section(out: &mut String, flips: &[super::Flip]) {
    let reg = flips.iter().filter(|f| f.regression()).count();
    let _ = writeln!(
        out,
        "\n## Against the baseline: 🔻 {reg} regression(s), 🔺 {} fix(es)\n",
        flips.len() - reg
    );
    if flips.is_empty() {
        return;
    }
    out.push_str("| | suite | case | model | before | now |\n|---|---|---|---|---|---|\n");
    // Regressions first: they are what a reviewer must look at.
    let mut ordered: Vec<&super::Flip> = flips.iter().filter(|f| f.regression()).collect();
    ordered.extend(flips.iter().filter(|f| !f.regression()));
    for f in ordered.iter().take(FLIP_ROWS) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} {} | {} {} |",
            if f.regression() { "🔻" } else { "🔺" },
            esc(&f.suite),
            esc(&f.case),
            esc(&f.model),
            mark(f.before),
            f.before,
            mark(f.after),
            f.after
        );
    }
    if flips.len() > FLIP_ROWS {
        let _ = writeln!(
            out,
            "\n… {} more flip(s) not listed (see the HTML report or results.json).",
            flips.len() - FLIP_ROWS
        );
    }
}

fn ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0} ms"))
        .unwrap_or_else(|| "–".into())
}

fn tps(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "–".into())
}

fn latency_section(out: &mut String, r: &RunResults) {
    let lat = latency(r);
    if lat.is_empty() {
        return;
    }
    out.push_str("\n## Latency (live requests only)\n\n| model | live | TTFT p50 | TTFT p90 | tokens/s p50 | tokens/s p90 |\n|---|---|---|---|---|---|\n");
    for (m, l) in &lat {
        if l.live == 0 {
            let _ = writeln!(
                out,
                "| {} | 0 | replayed ({}): not latency | | | |",
                esc(m),
                l.replayed
            );
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            esc(m),
            l.live,
            ms(Latency::p(&l.ttft_ms, 0.5)),
            ms(Latency::p(&l.ttft_ms, 0.9)),
            tps(Latency::p(&l.tokens_per_s, 0.5)),
            tps(Latency::p(&l.tokens_per_s, 0.9))
        );
    }
}

/// Judge calls of model-graded assertions, per candidate model × suite and in all, beside
/// the candidate's own tokens on the same cases (the latency above is the candidate's).
fn judge_section(out: &mut String, r: &RunResults) {
    let Some(total) = judge_total(r) else {
        return;
    };
    let costs = judge_costs(r);
    let _ = writeln!(
        out,
        "\n## Judge calls (apart from the candidates' figures)\n\n| {} |\n|{}",
        JUDGE_COLUMNS.join(" | "),
        "---|".repeat(JUDGE_COLUMNS.len())
    );
    let row = |out: &mut String, model: &str, suite: &str, c: &JudgeCost| {
        let cells: Vec<String> = c.cells().iter().map(|x| esc(x)).collect();
        let _ = writeln!(out, "| {model} | {suite} | {} |", cells.join(" | "));
    };
    for ((m, s), c) in &costs {
        row(out, &esc(m), &esc(s), c);
    }
    if costs.len() > 1 {
        row(out, "**all**", "", &total);
    }
}

/// Per suite a case × model table, within `budget` characters of the whole page: cases any
/// model did not pass come first; what does not fit is counted, not silently dropped.
fn case_tables(out: &mut String, r: &RunResults, budget: usize) {
    let mut cut = 0usize;
    let mut cut_passing = 0usize;
    for s in suites(r) {
        let cases: Vec<&CaseResult> = r.cases.iter().filter(|c| c.suite == s).collect();
        let mut ms: Vec<&str> = cases.iter().map(|c| c.model.as_str()).collect();
        ms.sort();
        ms.dedup();
        let mut ids: Vec<&str> = cases.iter().map(|c| c.case.as_str()).collect();
        ids.sort();
        ids.dedup();
        let row = |id: &str| {
            let mut line = format!("| {} |", esc(id));
            let mut all_pass = true;
            for m in &ms {
                match cases.iter().find(|c| c.case == id && c.model == *m) {
                    Some(c) => {
                        all_pass &= c.outcome == Outcome::Pass;
                        let ex = c
                            .samples
                            .first()
                            .and_then(|x| x.extracted.as_deref())
                            .map(|e| format!(" `{}`", esc_short(e)))
                            .unwrap_or_default();
                        let _ = write!(line, " {}{ex} |", mark(c.outcome));
                    }
                    None => line.push_str(" |"),
                }
            }
            line.push('\n');
            (all_pass, line)
        };
        let rows: Vec<(bool, String)> = ids.iter().map(|id| row(id)).collect();
        let mut head = format!("\n## {}\n\n| case |", esc(&s));
        for m in &ms {
            let _ = write!(head, " {} |", esc(m));
        }
        head.push_str("\n|---|");
        for _ in &ms {
            head.push_str("---|");
        }
        head.push('\n');
        if out.len() + head.len() >= budget {
            cut += rows.len();
            cut_passing += rows.iter().filter(|x| x.0).count();
            continue;
        }
        out.push_str(&head);
        // Rows that need attention first, then passing ones, each in name order.
        let mut shown = 0;
        for (pass, line) in rows
            .iter()
            .filter(|x| !x.0)
            .chain(rows.iter().filter(|x| x.0))
        {
            if out.len() + line.len() < budget {
                out.push_str(line);
                shown += 1;
            } else {
                cut += 1;
                cut_passing += usize::from(*pass);
            }
        }
        if shown < rows.len() {
            let _ = writeln!(out, "| … {} more case(s) cut |", rows.len() - shown);
        }
    }
    if cut > 0 {
        let _ = writeln!(
            out,
            "\n**Cut to stay under {MARKDOWN_LIMIT} characters:** {cut} case row(s) not shown ({cut_passing} of them passing on every model); the full table is in the HTML report and results.json."
        );
    }
}

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn esc_short(s: &str) -> String {
    let one: String = s.chars().take(40).collect();
    one.replace('|', "\\|").replace('\n', " ").replace('`', "'")
}
