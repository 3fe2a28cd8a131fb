//! A comparison as Markdown (a PR comment, a trial's failure message) or JSON.

use std::fmt::Write as _;

use super::{CaseView, Comparison, Direction, Flip, Test, Verdict, p_text, pct};

/// At most this many flips of each direction are listed in Markdown (JSON has them all).
const MAX_FLIPS: usize = 25;

/// The comparison as pretty JSON (schema [`super::COMPARE_SCHEMA_VERSION`]).
pub fn json(c: &Comparison) -> String {
    let mut s = serde_json::to_string_pretty(c).expect("a comparison serializes");
    s.push('\n');
    s
}

/// The comparison as Markdown: the flips first (pass→fail, then fail→pass), then pass rates
/// with their intervals, the paired test and the verdict.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## llmtest compare: {} → {}\n",
        side_name(&c.baseline.model, c.baseline.file.as_deref()),
        side_name(&c.candidate.model, c.candidate.file.as_deref())
    );
    let one = c.test == Test::McnemarExact;
    for (dir, title) in [
        (
            Direction::Worse,
            if one {
                "🔻 pass → fail"
            } else {
                "🔻 lower pass rate"
            },
        ),
        (
            Direction::Better,
            if one {
                "🔺 fail → pass"
            } else {
                "🔺 higher pass rate"
            },
        ),
    ] {
        let list: Vec<&Flip> = c.flips.iter().filter(|f| f.direction == dir).collect();
        let _ = writeln!(out, "### {title} ({})\n", list.len());
        if list.is_empty() {
            out.push_str("none\n\n");
        }
        for f in list.iter().take(MAX_FLIPS) {
            let _ = writeln!(out, "- **{}::{}**", f.suite, f.case);
            case_lines(&mut out, "baseline", &f.baseline);
            case_lines(&mut out, "candidate", &f.candidate);
        }
        if list.len() > MAX_FLIPS {
            let _ = writeln!(
                out,
                "- … {} more (all of them in `--format json`)",
                list.len() - MAX_FLIPS
            );
        }
        if !list.is_empty() {
            out.push('\n');
        }
    }
    out.push_str("### Pass rates\n\n| | model | passed | pass rate | 95% interval (Wilson) |\n|---|---|---|---|---|\n");
    for (role, a) in [("baseline", &c.baseline), ("candidate", &c.candidate)] {
        let _ = writeln!(
            out,
            "| {role} | {} | {}/{} | {} | {} – {} |",
            a.model,
            a.passed,
            a.samples,
            pct(a.pass_rate),
            pct(a.ci_low),
            pct(a.ci_high)
        );
    }
    if !c.by_suite.is_empty() {
        out.push_str("\n| suite | cases | baseline | candidate | worse | better | p |\n|---|---|---|---|---|---|---|\n");
        for r in &c.by_suite {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.suite,
                r.paired,
                pct(r.baseline_rate),
                pct(r.candidate_rate),
                r.worse,
                r.better,
                p_text(r.p_value)
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{}: {} case(s) paired, {} worse, {} better; two-sided p = {}.",
        capitalised(c.test.describe()),
        c.paired,
        c.worse,
        c.better,
        p_text(c.p_value)
    );
    if !c.excluded.is_empty() {
        let infra = c.excluded.iter().filter(|e| e.is_infra()).count();
        let names: Vec<String> = c
            .excluded
            .iter()
            .take(10)
            .map(|e| format!("{}::{} ({} / {})", e.suite, e.case, e.baseline, e.candidate))
            .collect();
        let _ = writeln!(
            out,
            "Not compared: {} case(s), {} of them infrastructure errors (not the model): {}{}.",
            c.excluded.len(),
            infra,
            names.join(", "),
            if c.excluded.len() > 10 { ", …" } else { "" }
        );
    }
    let mark = match c.verdict {
        Verdict::Regression => "🔻",
        Verdict::Improvement => "🔺",
        Verdict::NoSignificantChange => "⚪",
    };
    let _ = writeln!(
        out,
        "\n**Verdict: {mark} {}** at α = {} (pass rate {} → {}, {} {} points).",
        c.verdict.as_str(),
        c.alpha,
        pct(c.baseline.pass_rate),
        pct(c.candidate.pass_rate),
        if c.drop > 0.0 { "down" } else { "up" },
        format_args!("{:.1}", 100.0 * c.drop.abs())
    );
    out
}

fn side_name(model: &str, file: Option<&str>) -> String {
    match file {
        Some(f) => format!("`{model}` ({f})"),
        None => format!("`{model}`"),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn case_lines(out: &mut String, role: &str, v: &CaseView) {
    let rate = if v.samples > 1 {
        format!(", {}/{} samples", v.passed, v.samples)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  - {role} ({}{rate}): {}",
        v.outcome,
        inline(&shorten(&v.answer))
    );
    for a in &v.assertions {
        let _ = writeln!(
            out,
            "    - {} {}: expected {}; found {}",
            if a.pass { "✓" } else { "✗" },
            a.kind,
            inline(&a.expected),
            inline(&a.found)
        );
    }
}

/// At most 300 characters of an answer, with how long it was.
fn shorten(s: &str) -> String {
    const MAX: usize = 300;
    let t = s.trim();
    let n = t.chars().count();
    if n <= MAX {
        t.to_owned()
    } else {
        format!("{}… ({n} chars)", t.chars().take(MAX).collect::<String>())
    }
}

/// Text on one Markdown line, in a code span that its own backticks cannot close.
fn inline(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let one = one.trim();
    if one.is_empty() {
        "(empty)".into()
    } else if one.contains('`') {
        format!("`` {one} ``")
    } else {
        format!("`{one}`")
    }
}
