//! One self-contained HTML page: inline CSS, inline SVG charts drawn here, a few lines of
//! inline JavaScript for the case filters. Nothing is fetched (a Content-Security-Policy of
//! `default-src 'none'` says so to the browser), so the file works offline and as a CI
//! artifact. Dark mode follows the system.
//!
//! Sections: the model × suite heat map (viridis, colour-blind safe; models grouped by
//! family; each cell links to its cases), pass rates with Wilson 95% intervals, latency of
//! live requests (TTFT and tokens/s box plots, p50/p90; replayed figures are never plotted),
//! the judge calls of model-graded assertions (tokens and time, apart from the candidates'),
//! perf suites' latency tables (prompt length × load, the server's own timings, resources),
//! and every case with filters and search.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use llmtest_grade::Outcome;

use super::{
    Flip, JUDGE_COLUMNS, JudgeCost, Latency, flips, judge_costs, judge_total, latency, mark,
    models_by_family, rate, suites,
};
use crate::results::{CaseResult, RunResults, SampleResult};

const CSS: &str = include_str!("html.css");
const JS: &str = include_str!("html.js");

/// Longer answers are cut in the page (results.json keeps them whole).
const TEXT_LIMIT: usize = 4_000;

/// At most this many rows in the interval chart.
const INTERVAL_ROWS: usize = 300;

/// The whole page.
pub fn html(r: &RunResults, baseline: Option<&RunResults>) -> String {
    let mut out = String::with_capacity(64 * 1024 + r.cases.len() * 1024);
    out.push_str(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <meta name=color-scheme content=\"light dark\">\
         <meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
         <link rel=icon href=\"data:,\"><title>llmtest results</title><style>",
    );
    out.push_str(CSS);
    out.push_str("</style></head><body>");
    header(&mut out, r, baseline);
    let flips = flips(r, baseline);
    heat_map(&mut out, r, &flips);
    intervals(&mut out, r, &flips);
    latency_section(&mut out, r);
    judge_section(&mut out, r);
    perf_section(&mut out, r);
    cases(&mut out, r, &flips);
    out.push_str("<script>");
    out.push_str(JS);
    out.push_str("</script></body></html>\n");
    out
}

fn header(out: &mut String, r: &RunResults, baseline: Option<&RunResults>) {
    let [pass, wrong, infra, skipped] = super::tally(r);
    let _ = write!(
        out,
        "<h1>llmtest results</h1><p class=meta>profile <b>{}</b> · mode <b>{}</b> · llmtest {} · \
         {} case(s): <span class=fix>{} passed</span>, <span class=reg>{} failed</span>, {} infrastructure, {} skipped</p>",
        esc(&r.profile),
        esc(&r.mode),
        esc(&r.llmtest_version),
        r.summary.total,
        pass,
        wrong,
        infra,
        skipped,
    );
    if let Some(b) = baseline {
        let _ = write!(
            out,
            "<p class=meta>baseline: profile <b>{}</b> ({}), {} case(s); <span class=reg>▼</span> passed there, wrong now · <span class=fix>▲</span> wrong there, passing now</p>",
            esc(&b.profile),
            esc(&b.mode),
            b.summary.total
        );
    }
    let unavailable: Vec<String> = r
        .models
        .iter()
        .filter_map(|m| {
            m.unavailable
                .as_ref()
                .map(|u| format!("{}: {}", esc(&m.name), esc(u)))
        })
        .collect();
    if !unavailable.is_empty() {
        let _ = write!(out, "<p class=note>not run: {}</p>", unavailable.join("; "));
    }
}

/// Viridis at `t` in [0, 1] (five stops, linear between them).
fn viridis(t: f64) -> (u8, u8, u8) {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = t.clamp(0.0, 1.0) * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn flip_badges(flips: &[Flip], model: &str, suite: &str) -> String {
    let reg = flips
        .iter()
        .filter(|f| f.model == model && f.suite == suite && f.regression())
        .count();
    let fix = flips
        .iter()
        .filter(|f| f.model == model && f.suite == suite && !f.regression())
        .count();
    let mut s = String::new();
    if reg > 0 {
        let _ = write!(
            s,
            " <span class=\"flip reg\" title=\"{reg} regression(s) against the baseline\">▼{reg}</span>"
        );
    }
    if fix > 0 {
        let _ = write!(
            s,
            " <span class=\"flip fix\" title=\"{fix} fix(es) against the baseline\">▲{fix}</span>"
        );
    }
    s
}

fn heat_map(out: &mut String, r: &RunResults, flips: &[Flip]) {
    let suites = suites(r);
    out.push_str("<h2 id=matrix>Pass rate: model × suite</h2><table class=heat id=heatmap><thead><tr><th>model</th>");
    for s in &suites {
        let _ = write!(out, "<th>{}</th>", esc(s));
    }
    out.push_str("</tr></thead><tbody>");
    for (fam, models) in models_by_family(r) {
        if models.len() > 1 || fam != models[0] {
            let _ = write!(
                out,
                "<tr class=fam><th colspan={}>{}</th></tr>",
                suites.len() + 1,
                esc(&fam)
            );
        }
        for m in &models {
            let _ = write!(out, "<tr><th>{}</th>", esc(m));
            for s in &suites {
                let Some(c) = r.summary.matrix.get(m).and_then(|x| x.get(s)) else {
                    out.push_str("<td></td>");
                    continue;
                };
                let href = format!("#cases?suite={}&amp;model={}", url(s), url(m));
                let extra = {
                    let mut e = String::new();
                    if c.infra > 0 {
                        let _ = write!(e, " ⚠️{}", c.infra);
                    }
                    if c.skipped > 0 {
                        let _ = write!(e, " ⏭{}", c.skipped);
                    }
                    e
                };
                match rate(c) {
                    Some((p, lo, hi)) => {
                        let (cr, cg, cb) = viridis(p);
                        let fg = if p < 0.6 { "#fff" } else { "#000" };
                        let _ = write!(
                            out,
                            "<td class=cell data-rate=\"{p:.4}\" style=\"background:rgb({cr},{cg},{cb});color:{fg}\"><a href=\"{href}\" title=\"{}/{} passed; Wilson 95% {:.0}–{:.0}%\">{:.0}%{}<small>{}/{}{extra}</small></a></td>",
                            c.passed,
                            c.passed + c.failed,
                            100.0 * lo,
                            100.0 * hi,
                            100.0 * p,
                            flip_badges(flips, m, s),
                            c.passed,
                            c.passed + c.failed,
                        );
                    }
                    None => {
                        let _ = write!(
                            out,
                            "<td class=cell><a href=\"{href}\">–<small>not graded{extra}</small></a></td>"
                        );
                    }
                }
            }
            out.push_str("</tr>");
        }
    }
    out.push_str("</tbody></table><div class=legend>0%<svg class=ramp viewBox=\"0 0 100 1\" preserveAspectRatio=none>");
    for i in 0..20 {
        let (cr, cg, cb) = viridis(i as f64 / 19.0);
        let _ = write!(
            out,
            "<rect x={} y=0 width=5.2 height=1 fill=\"rgb({cr},{cg},{cb})\" />",
            i * 5
        );
    }
    out.push_str("</svg>100% · pass rate over graded cases (viridis) · ⚠️ infrastructure errors (not graded) · ⏭ skipped</div>");
}

fn intervals(out: &mut String, r: &RunResults, flips: &[Flip]) {
    let mut rows = Vec::new();
    for (_, models) in models_by_family(r) {
        for m in models {
            for (s, c) in r.summary.matrix.get(&m).into_iter().flatten() {
                if let Some(x) = rate(c) {
                    rows.push((m.clone(), s.clone(), c.passed, c.passed + c.failed, x));
                }
            }
        }
    }
    out.push_str("<h2 id=intervals>Pass rates with Wilson 95% intervals</h2>");
    if rows.is_empty() {
        out.push_str("<p class=note>nothing was graded</p>");
        return;
    }
    let shown = rows.len().min(INTERVAL_ROWS);
    let (label_w, plot_w, text_w, row_h) = (300.0, 420.0, 150.0, 20.0);
    let h = 24.0 + row_h * shown as f64;
    let _ = write!(
        out,
        "<svg id=wilson width={w} height={h} viewBox=\"0 0 {w} {h}\" role=img aria-label=\"pass rates with intervals\">",
        w = label_w + plot_w + text_w
    );
    for k in 0..=4 {
        let x = label_w + plot_w * k as f64 / 4.0;
        let _ = write!(
            out,
            "<line class=grid x1={x} x2={x} y1=14 y2={h} /><text x={x} y=10 text-anchor=middle>{}%</text>",
            k * 25
        );
    }
    for (i, (m, s, pass, n, (p, lo, hi))) in rows.iter().take(shown).enumerate() {
        let y = 20.0 + row_h * i as f64;
        let reg = flips
            .iter()
            .any(|f| &f.model == m && &f.suite == s && f.regression());
        let _ = write!(
            out,
            "<text x={} y={} text-anchor=end{}>{} · {}</text><rect class=ci x={:.1} y={:.1} width={:.1} height=8 /><circle class=pt cx={:.1} cy={:.1} r=4 /><text x={} y={}>{:.0}% ({:.0}–{:.0}) {pass}/{n}</text>",
            label_w - 8.0,
            y + 12.0,
            if reg { " class=reg" } else { "" },
            esc(m),
            esc(s),
            label_w + plot_w * lo,
            y + 4.0,
            (plot_w * (hi - lo)).max(1.0),
            label_w + plot_w * p,
            y + 8.0,
            label_w + plot_w + 8.0,
            y + 12.0,
            100.0 * p,
            100.0 * lo,
            100.0 * hi
        );
    }
    out.push_str("</svg>");
    if rows.len() > shown {
        let _ = write!(
            out,
            "<p class=note>{} more model × suite row(s) not drawn; see the heat map</p>",
            rows.len() - shown
        );
    }
}

/// A horizontal box plot per model: box p25–p75, median line, whiskers p10–p90.
fn box_plot(out: &mut String, id: &str, title: &str, unit: &str, series: &[(&str, &[f64])]) {
    let series: Vec<&(&str, &[f64])> = series.iter().filter(|s| !s.1.is_empty()).collect();
    if series.is_empty() {
        return;
    }
    let max = series
        .iter()
        .filter_map(|s| Latency::p(s.1, 0.9))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let (label_w, plot_w, row_h) = (200.0, 360.0, 26.0);
    let h = 40.0 + row_h * series.len() as f64;
    let _ = write!(
        out,
        "<figure><figcaption>{title}</figcaption><svg id={id} class=chart width={w} height={h} viewBox=\"0 0 {w} {h}\" role=img aria-label=\"{title}\">",
        w = label_w + plot_w + 20.0
    );
    for k in 0..=4 {
        let x = label_w + plot_w * k as f64 / 4.0;
        let _ = write!(
            out,
            "<line class=grid x1={x} x2={x} y1=6 y2={} /><text x={x} y={} text-anchor=middle>{}</text>",
            h - 20.0,
            h - 6.0,
            fmt_num(max * k as f64 / 4.0)
        );
    }
    let xs = |v: f64| label_w + plot_w * (v / max).min(1.0);
    for (i, (name, v)) in series.iter().enumerate() {
        let q = |p: f64| Latency::p(v, p).unwrap_or(0.0);
        let y = 8.0 + row_h * i as f64;
        let mid = y + 9.0;
        let _ = write!(
            out,
            "<text x={} y={} text-anchor=end>{}</text>\
             <line class=wh x1={:.1} x2={:.1} y1={mid} y2={mid} />\
             <rect class=box x={:.1} y={y} width={:.1} height=18><title>{}: p50 {} {unit}, p90 {} {unit} ({} values)</title></rect>\
             <line class=med x1={m:.1} x2={m:.1} y1={y} y2={} />",
            label_w - 8.0,
            mid + 4.0,
            esc(name),
            xs(q(0.1)),
            xs(q(0.9)),
            xs(q(0.25)),
            (xs(q(0.75)) - xs(q(0.25))).max(1.0),
            esc(name),
            fmt_num(q(0.5)),
            fmt_num(q(0.9)),
            v.len(),
            y + 18.0,
            m = xs(q(0.5)),
        );
    }
    let _ = write!(
        out,
        "</svg><figcaption class=note>{unit}; box p25–p75, line p50, whiskers p10–p90</figcaption></figure>"
    );
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn latency_section(out: &mut String, r: &RunResults) {
    out.push_str("<h2 id=latency>Latency (live requests)</h2>");
    let lat = latency(r);
    let live: BTreeMap<&String, &Latency> = lat.iter().filter(|(_, l)| l.live > 0).collect();
    if live.is_empty() {
        let replayed: usize = lat.values().map(|l| l.replayed).sum();
        let _ = write!(
            out,
            "<p class=note id=no-latency>no live timings in this run{}: latency is only shown for requests made now</p>",
            if replayed > 0 {
                format!(" ({replayed} replayed from cassettes, not plotted)")
            } else {
                String::new()
            }
        );
        return;
    }
    out.push_str("<div class=charts>");
    let ttft: Vec<(&str, &[f64])> = live
        .iter()
        .map(|(m, l)| (m.as_str(), l.ttft_ms.as_slice()))
        .collect();
    let tps: Vec<(&str, &[f64])> = live
        .iter()
        .map(|(m, l)| (m.as_str(), l.tokens_per_s.as_slice()))
        .collect();
    box_plot(out, "ttft", "Time to first token", "ms", &ttft);
    box_plot(out, "tps", "Output tokens per second", "tokens/s", &tps);
    out.push_str("</div><table id=latency-table><thead><tr><th>model</th><th>live</th><th>replayed (not plotted)</th><th>TTFT p50</th><th>TTFT p90</th><th>tokens/s p50</th><th>tokens/s p90</th></tr></thead><tbody>");
    let cell = |v: Option<f64>, unit: &str| {
        v.map(|x| format!("{} {unit}", fmt_num(x)))
            .unwrap_or_else(|| "–".into())
    };
    for (m, l) in &lat {
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(m),
            l.live,
            l.replayed,
            cell(Latency::p(&l.ttft_ms, 0.5), "ms"),
            cell(Latency::p(&l.ttft_ms, 0.9), "ms"),
            cell(Latency::p(&l.tokens_per_s, 0.5), ""),
            cell(Latency::p(&l.tokens_per_s, 0.9), "")
        );
    }
    out.push_str("</tbody></table>");
}

/// Judge calls per candidate model × suite, beside the candidate's own tokens; absent when
/// no judge was asked.
fn judge_section(out: &mut String, r: &RunResults) {
    let Some(total) = judge_total(r) else {
        return;
    };
    let costs = judge_costs(r);
    out.push_str("<h2 id=judges>Judge calls (apart from the candidates' figures)</h2><table id=judge-table><thead><tr>");
    for h in JUDGE_COLUMNS {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    let row = |out: &mut String, head: &str, c: &JudgeCost| {
        out.push_str(head);
        for cell in c.cells() {
            let _ = write!(out, "<td>{}</td>", esc(&cell));
        }
        out.push_str("</tr>");
    };
    for ((m, s), c) in &costs {
        row(
            out,
            &format!("<tr><th>{}</th><td>{}</td>", esc(m), esc(s)),
            c,
        );
    }
    if costs.len() > 1 {
        row(out, "<tr class=total><th>all</th><td></td>", &total);
    }
    out.push_str("</tbody></table><p class=note>The latency above is the candidates'; replayed judge answers count their recorded tokens, not their time.</p>");
}

/// Perf suites' tables, one per suite × model; absent when no perf case ran.
fn perf_section(out: &mut String, r: &RunResults) {
    let tables = crate::perf::tables(r);
    if tables.is_empty() {
        return;
    }
    out.push_str("<h2 id=perf>Perf suites (live load runs)</h2>");
    let table = |out: &mut String,
                 class: &str,
                 head: &[&str],
                 rows: &mut dyn Iterator<Item = &[String]>| {
        let _ = write!(out, "<table class={class}><thead><tr>");
        for h in head {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("</tr></thead><tbody>");
        for row in rows {
            out.push_str("<tr>");
            for cell in row {
                let _ = write!(out, "<td>{}</td>", esc(cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    };
    for t in &tables {
        let _ = write!(out, "<h3>{} on {}</h3>", esc(&t.suite), esc(&t.model));
        table(
            out,
            "perf",
            &crate::perf::COLUMNS,
            &mut t.rows.iter().map(|r| &r[..]),
        );
        if !t.server.is_empty() {
            out.push_str(
                "<p class=meta>The server's own timings of the same requests (medians):</p>",
            );
            table(
                out,
                "perf server",
                &crate::perf::SERVER_COLUMNS,
                &mut t.server.iter().map(|r| &r[..]),
            );
        }
        if !t.resources.is_empty() {
            let _ = write!(out, "<p class=meta>{}.</p>", esc(&t.resources.join("; ")));
        }
    }
}

fn group(o: Outcome) -> &'static str {
    if o == Outcome::Pass {
        "pass"
    } else if o.is_model_failure() {
        "wrong"
    } else if o.is_infra() {
        "infra"
    } else if o == Outcome::Skipped {
        "skipped"
    } else {
        "other"
    }
}

fn select(out: &mut String, id: &str, label: &str, options: &[(String, String)]) {
    let _ = write!(
        out,
        "<label>{label} <select id={id}><option value=\"\">all</option>"
    );
    for (v, text) in options {
        let _ = write!(out, "<option value=\"{}\">{}</option>", esc(v), esc(text));
    }
    out.push_str("</select></label>");
}

fn cases(out: &mut String, r: &RunResults, flips: &[Flip]) {
    out.push_str("<h2 id=cases-title>Cases</h2><div class=filters>");
    let suites: Vec<(String, String)> = suites(r).into_iter().map(|s| (s.clone(), s)).collect();
    select(out, "f-suite", "suite", &suites);
    let models: Vec<(String, String)> = models_by_family(r)
        .into_iter()
        .flat_map(|(_, ms)| ms)
        .map(|m| (m.clone(), m))
        .collect();
    select(out, "f-model", "model", &models);
    let mut outcomes: Vec<(String, String)> = vec![
        ("pass".into(), "✅ passed".into()),
        ("wrong".into(), "❌ any wrong answer".into()),
        ("infra".into(), "⚠️ infrastructure".into()),
    ];
    let mut present: Vec<Outcome> = r.cases.iter().map(|c| c.outcome).collect();
    present.sort();
    present.dedup();
    outcomes.extend(
        present
            .into_iter()
            .filter(|o| *o != Outcome::Pass)
            .map(|o| (o.as_str().to_owned(), format!("{} {}", mark(o), o))),
    );
    select(out, "f-outcome", "outcome", &outcomes);
    out.push_str("<label><input type=checkbox id=f-flips> flips only</label>\
                  <input type=search id=f-q placeholder=\"search answers, ids, values…\" aria-label=search>\
                  <span id=f-count class=meta></span></div>");
    out.push_str("<table id=cases><thead><tr><th>suite</th><th>case</th><th>model</th><th>outcome</th><th>score</th><th>answer</th><th>extracted</th><th>assertions</th></tr></thead><tbody>");
    for c in &r.cases {
        let flip = flips
            .iter()
            .find(|f| f.suite == c.suite && f.case == c.case && f.model == c.model);
        let _ = write!(
            out,
            "<tr id=\"{}\" class=\"{}{}\" data-suite=\"{}\" data-model=\"{}\" data-outcome={} data-group={} data-flip={}>",
            esc(&format!("case-{}::{}::{}", c.suite, c.case, c.model)),
            group(c.outcome),
            if flip.is_some() { " flipped" } else { "" },
            esc(&c.suite),
            esc(&c.model),
            c.outcome.as_str(),
            group(c.outcome),
            u8::from(flip.is_some()),
        );
        let flip_note = flip
            .map(|f| {
                format!(
                    "<br><small class={}>{} was {}</small>",
                    if f.regression() { "reg" } else { "fix" },
                    if f.regression() { "▼" } else { "▲" },
                    f.before
                )
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "<td>{}</td><td>{}</td><td>{}</td><td class=o>{} {}{flip_note}</td><td>{:.2}</td>",
            esc(&c.suite),
            esc(&c.case),
            esc(&c.model),
            mark(c.outcome),
            c.outcome,
            c.score
        );
        case_detail(out, c);
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn case_detail(out: &mut String, c: &CaseResult) {
    if let Some(e) = &c.error {
        let _ = write!(out, "<td colspan=3><pre>{}</pre></td>", esc(&e.to_string()));
        return;
    }
    if c.samples.is_empty() {
        let _ = write!(
            out,
            "<td colspan=3>{}</td>",
            esc(c.skipped.as_deref().unwrap_or(""))
        );
        return;
    }
    let many = c.samples.len() > 1;
    let (mut answer, mut extracted, mut asserts) = (String::new(), String::new(), String::new());
    for s in &c.samples {
        let tag = if many {
            format!("#{} {} ", s.index, mark(s.outcome))
        } else {
            String::new()
        };
        sample_answer(&mut answer, s, &tag);
        if let Some(x) = &s.extracted {
            let _ = write!(extracted, "{tag}<code>{}</code><br>", esc(&cut(x)));
        }
        let _ = write!(
            asserts,
            "{}<ul class=asserts>",
            if many { esc(&tag) } else { String::new() }
        );
        for a in &s.assertions {
            let _ = write!(
                asserts,
                "<li class={}><b>{}</b>: expected <code>{}</code>; found <code>{}</code>",
                if a.pass { "ok" } else { "no" },
                esc(&a.kind),
                esc(&cut(&a.expected)),
                esc(&cut(&a.found))
            );
            if let Some(d) = &a.detail {
                let _ = write!(
                    asserts,
                    "<details><summary>detail</summary><pre>{}</pre></details>",
                    esc(&cut(&serde_json::to_string_pretty(d).unwrap_or_default()))
                );
            }
            asserts.push_str("</li>");
        }
        asserts.push_str("</ul>");
    }
    if let Some(j) = c.judge.as_ref().filter(|j| j.calls > 0) {
        let _ = write!(
            asserts,
            "<small class=\"meta judge\">judge {}: {} call(s), {} + {} tokens, {}</small>",
            esc(&j.models.join(", ")),
            j.calls,
            j.prompt_tokens,
            j.completion_tokens,
            if j.replayed {
                "replayed".to_owned()
            } else {
                format!("{:.0} ms", j.total_ms)
            }
        );
    }
    let _ = write!(
        out,
        "<td>{answer}</td><td>{extracted}</td><td>{asserts}</td>"
    );
}

fn sample_answer(out: &mut String, s: &SampleResult, tag: &str) {
    let first: String = s.answer.chars().take(80).collect();
    let _ = write!(
        out,
        "<details><summary>{}{}{}</summary><pre>{}</pre>",
        esc(tag),
        esc(first.lines().next().unwrap_or("")),
        if s.answer.chars().count() > first.chars().count() || first.contains('\n') {
            "…"
        } else {
            ""
        },
        esc(&cut(&s.answer))
    );
    if let Some(reasoning) = &s.reasoning {
        let _ = write!(
            out,
            "<details><summary>reasoning ({} chars, {})</summary><pre>{}</pre></details>",
            s.reasoning_chars,
            esc(&s.reasoning_status),
            esc(&cut(reasoning))
        );
    } else if s.reasoning_status != "none" {
        let _ = write!(
            out,
            "<small class=note>reasoning {} ({} chars)</small>",
            esc(&s.reasoning_status),
            s.reasoning_chars
        );
    }
    if let Some(f) = &s.finish_reason {
        let _ = write!(out, "<small class=meta>finish: {}</small>", esc(f));
    }
    out.push_str("</details>");
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(TEXT_LIMIT) {
        Some((i, _)) => format!(
            "{}… ({} more characters in results.json)",
            &s[..i],
            s[i..].chars().count()
        ),
        None => s.to_owned(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn url(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), (68, 1, 84));
        assert_eq!(viridis(1.0), (253, 231, 37));
        assert_eq!(viridis(0.5), (33, 145, 140));
    }

    #[test]
    fn fragments_are_url_encoded() {
        assert_eq!(url("a b/ü"), "a%20b%2F%C3%BC");
    }
}
