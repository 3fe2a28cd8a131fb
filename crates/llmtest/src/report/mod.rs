//! Reports: JSON (the versioned results schema), Markdown (the model × suite matrix people
//! build by hand today), JUnit XML (CI dashboards) and a self-contained HTML page.

use std::fmt::Write as _;

use llmtest_grade::Outcome;

use crate::results::{CaseResult, RunResults};

/// Output formats of `llmtest run --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Junit,
    Md,
    Html,
}

pub fn render(results: &RunResults, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(results).expect("results serialize") + "\n",
        Format::Md => markdown(results),
        Format::Junit => junit(results),
        Format::Html => html(results),
    }
}

fn mark(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "✅",
        Outcome::Fail => "❌",
        Outcome::UnterminatedReasoning => "❌💭",
        Outcome::CodeTimeout => "❌⏱",
        Outcome::CodeError => "❌💥",
        Outcome::InfraError => "⚠️",
        Outcome::Skipped => "⏭",
        Outcome::JudgeError => "⚠️",
        Outcome::Unstable => "❔",
    }
}

/// Model × suite pass rates, then per suite a case × model ✅/❌ table.
pub fn markdown(r: &RunResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# llmtest results — profile `{}` ({})\n",
        r.profile, r.mode
    );
    let suites: Vec<String> = {
        let mut s: Vec<String> = r.cases.iter().map(|c| c.suite.clone()).collect();
        s.dedup();
        s.sort();
        s.dedup();
        s
    };
    let models: Vec<String> = r.summary.matrix.keys().cloned().collect();
    let _ = write!(out, "| model |");
    for s in &suites {
        let _ = write!(out, " {s} |");
    }
    let _ = write!(out, "\n|---|");
    for _ in &suites {
        let _ = write!(out, "---|");
    }
    out.push('\n');
    for m in &models {
        let _ = write!(out, "| {m} |");
        for s in &suites {
            match r.summary.matrix.get(m).and_then(|x| x.get(s)) {
                Some(c) => {
                    let graded = c.passed + c.failed;
                    let mut cell = if graded > 0 {
                        format!(
                            " {}/{} ({:.0}%)",
                            c.passed,
                            graded,
                            100.0 * c.passed as f64 / graded as f64
                        )
                    } else {
                        " –".into()
                    };
                    if c.infra > 0 {
                        let _ = write!(cell, " ⚠️{} infra", c.infra);
                    }
                    if c.skipped > 0 {
                        let _ = write!(cell, " ⏭{}", c.skipped);
                    }
                    if let Some(t) = c.ttft_ms_p50 {
                        let _ = write!(cell, "<br>TTFT {t:.0} ms");
                    }
                    if let Some(t) = c.tokens_per_s_p50 {
                        let _ = write!(cell, ", {t:.0} tok/s");
                    }
                    let _ = write!(out, "{cell} |");
                }
                None => out.push_str(" |"),
            }
        }
        out.push('\n');
    }
    for s in &suites {
        let cases: Vec<&CaseResult> = r.cases.iter().filter(|c| &c.suite == s).collect();
        let ms: Vec<&String> = models
            .iter()
            .filter(|m| cases.iter().any(|c| &&c.model == m))
            .collect();
        let _ = write!(out, "\n## {s}\n\n| case |");
        for m in &ms {
            let _ = write!(out, " {m} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &ms {
            out.push_str("---|");
        }
        out.push('\n');
        let mut ids: Vec<&String> = cases.iter().map(|c| &c.case).collect();
        ids.dedup();
        for id in ids {
            let _ = write!(out, "| {id} |");
            for m in &ms {
                match cases.iter().find(|c| &c.case == id && &&c.model == m) {
                    Some(c) => {
                        let ex = c
                            .samples
                            .first()
                            .and_then(|x| x.extracted.as_deref())
                            .map(|e| format!(" `{}`", md_escape(e)))
                            .unwrap_or_default();
                        let _ = write!(out, " {}{ex} |", mark(c.outcome));
                    }
                    None => out.push_str(" |"),
                }
            }
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "\n✅ pass · ❌ wrong answer · 💭 ran out of tokens while thinking · ⏱ code timeout · 💥 code error · ⚠️ infrastructure error (not the model) · ⏭ skipped"
    );
    out
}

fn md_escape(s: &str) -> String {
    let one: String = s.chars().take(40).collect();
    one.replace('|', "\\|").replace('\n', " ").replace('`', "'")
}

/// JUnit XML: a test suite per llmtest suite × model, a test case per case.
pub fn junit(r: &RunResults) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("llmtest");
    let mut groups: std::collections::BTreeMap<(String, String), Vec<&CaseResult>> =
        Default::default();
    for c in &r.cases {
        groups
            .entry((c.suite.clone(), c.model.clone()))
            .or_default()
            .push(c);
    }
    for ((suite, model), cases) in groups {
        let mut ts = TestSuite::new(format!("{suite}@{model}"));
        for c in cases {
            let status = match c.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Skipped => {
                    let mut s = TestCaseStatus::skipped();
                    if let Some(m) = &c.skipped {
                        s.set_message(m.clone());
                    }
                    s
                }
                Outcome::InfraError => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(
                        c.error
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                    );
                    s.set_type("infra_error");
                    s
                }
                other => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(crate::harness::failure_message(c));
                    s.set_type(other.as_str());
                    s
                }
            };
            let mut tc = TestCase::new(c.case.clone(), status);
            tc.set_classname(format!("{}.{}", c.suite, c.model));
            if let Some(t) = c.timings.as_ref().filter(|t| !t.replayed) {
                tc.set_time(std::time::Duration::from_secs_f64(t.total_ms / 1e3));
            }
            ts.add_test_case(tc);
        }
        report.add_test_suite(ts);
    }
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- junit serialization failed: {e} -->\n"))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A single self-contained HTML page: the matrix, then every case with answers on demand.
pub fn html(r: &RunResults) -> String {
    let mut out = String::from(
        "<!doctype html><meta charset=utf-8><title>llmtest results</title>\
         <style>body{font:14px system-ui;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}\
         .pass{background:#e7f7e7}.fail{background:#fde8e8}.infra{background:#fff6d6}pre{white-space:pre-wrap;max-width:70em}</style>",
    );
    let _ = write!(
        out,
        "<h1>llmtest results</h1><p>profile <code>{}</code>, mode {}</p>",
        esc(&r.profile),
        esc(&r.mode)
    );
    let md = markdown(r);
    let _ = write!(
        out,
        "<details open><summary>Matrix (Markdown)</summary><pre>{}</pre></details>",
        esc(&md)
    );
    out.push_str("<table><tr><th>suite</th><th>case</th><th>model</th><th>outcome</th><th>score</th><th>detail</th></tr>");
    for c in &r.cases {
        let class = match c.outcome {
            Outcome::Pass => "pass",
            Outcome::InfraError | Outcome::Skipped => "infra",
            _ => "fail",
        };
        let detail = match (&c.error, c.samples.first()) {
            (Some(e), _) => esc(&e.to_string()),
            (None, Some(s)) => {
                let asserts: Vec<String> = s
                    .assertions
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {}: expected {}; found {}",
                            if a.pass { "✓" } else { "✗" },
                            esc(&a.kind),
                            esc(&a.expected),
                            esc(&a.found)
                        )
                    })
                    .collect();
                format!(
                    "<details><summary>answer</summary><pre>{}</pre></details>{}",
                    esc(&s.answer),
                    asserts.join("<br>")
                )
            }
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<tr class={class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{detail}</td></tr>",
            esc(&c.suite),
            esc(&c.case),
            esc(&c.model),
            c.outcome,
            c.score
        );
    }
    out.push_str("</table>\n");
    out
}
