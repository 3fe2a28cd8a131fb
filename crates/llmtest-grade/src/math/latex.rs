//! LaTeX spellings normalized before lexing: commands folded to symbols, text commands
//! unwrapped, repeating decimals made exact.

use num_bigint::BigInt;
use num_traits::One;

/// LaTeX spellings folded before lexing. Longer commands come before their prefixes.
pub(super) const REPLACE: &[(&str, &str)] = &[
    ("\\left", ""),
    ("\\right", ""),
    ("\\bigl", ""),
    ("\\bigr", ""),
    ("\\Bigl", ""),
    ("\\Bigr", ""),
    ("\\big", ""),
    ("\\Big", ""),
    ("\\displaystyle", ""),
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\cfrac", "\\frac"),
    ("{,}", ""),
    ("{, }", ""),
    (",\\! ", ","),
    ("\\approx", "≈"),
    ("\\,", ""),
    ("\\!", ""),
    ("\\;", " "),
    ("\\:", " "),
    ("\\qquad", " "),
    ("\\quad", " "),
    ("\\ ", " "),
    ("\\%", "%"),
    ("\\$", ""),
    ("\\(", " "),
    ("\\)", " "),
    ("\\[", " "),
    ("\\]", " "),
    ("\\{", "⦃"),
    ("\\}", "⦄"),
    ("\\lbrace", "⦃"),
    ("\\rbrace", "⦄"),
    ("\\cdot", "*"),
    ("\\times", "*"),
    ("\\ast", "*"),
    ("\\div", "/"),
    ("\\leqslant", "≤"),
    ("\\geqslant", "≥"),
    ("\\leq", "≤"),
    ("\\geq", "≥"),
    ("\\le", "≤"),
    ("\\ge", "≥"),
    ("\\neq", "≠"),
    ("\\ne", "≠"),
    ("\\lt", "<"),
    ("\\gt", ">"),
    ("<=", "≤"),
    (">=", "≥"),
    ("\\infty", "∞"),
    ("\\infin", "∞"),
    ("\\pi", "π"),
    ("\\cup", "∪"),
    ("^{\\circ}", "°"),
    ("^\\circ", "°"),
    ("\\circ", "°"),
    ("\\degree", "°"),
    ("\\pm", "±"),
    ("\\textbf", ""),
    ("\\textnormal", ""),
    ("\\textit", ""),
    ("\\mathit", ""),
    ("\\textrm", ""),
    ("\\text", ""),
    ("\\mathrm", ""),
    ("\\mathbf", ""),
    ("\\mbox", ""),
    ("\\operatorname", ""),
    ("\\dots", ""),
    ("\\ldots", ""),
    ("\\cdots", ""),
    ("**", ""),
    ("~", " "),
    ("\\to", " "),
];

/// `0.\overline{3}`, `0.1\overline{6}`, `0.\dot{3}`, `0.\dot{1}4\dot{2}` → the exact fraction.
pub(super) fn repeating_decimals(s: &str) -> String {
    if !s.contains("\\overline") && !s.contains("\\dot") {
        return s.to_owned();
    }
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        // a decimal whose repeating part follows: digits '.' digits* then the marker
        if c[i].is_ascii_digit() && (i == 0 || !c[i - 1].is_ascii_digit()) {
            let mut k = i;
            while k < c.len() && c[k].is_ascii_digit() && k - i < 30 {
                k += 1;
            }
            if c.get(k) == Some(&'.') {
                let int: String = c[i..k].iter().collect();
                let fs = k + 1;
                let mut j = fs;
                while j < c.len() && c[j].is_ascii_digit() && j - fs < 30 {
                    j += 1;
                }
                let frac: String = c[fs..j].iter().collect();
                let rest: String = c[j..c.len().min(j + 80)].iter().collect();
                if let Some((rep, used)) = repeat_part(&rest) {
                    let (num, den) = repeating_fraction(&int, &frac, &rep);
                    out.push_str(&format!("\\frac{{{num}}}{{{den}}}"));
                    i = j + rest[..used].chars().count();
                    continue;
                }
            }
            out.extend(&c[i..k]);
            i = k;
            continue;
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// `\overline{142}…` or `\dot{1}4\dot{2}…` / `\dot{3}…`: (repeating digits, bytes used).
fn repeat_part(rest: &str) -> Option<(String, usize)> {
    let digits_in = |t: &str| -> Option<(String, usize)> {
        let t = t.strip_prefix('{')?;
        let end = t.find('}')?;
        let d = &t[..end];
        (!d.is_empty() && d.len() <= 30 && d.chars().all(|c| c.is_ascii_digit()))
            .then(|| (d.to_owned(), end + 2))
    };
    if let Some(t) = rest.strip_prefix("\\overline") {
        let (d, n) = digits_in(t)?;
        return Some((d, "\\overline".len() + n));
    }
    let t = rest.strip_prefix("\\dot")?;
    let (first, n1) = digits_in(t)?;
    let mut used = "\\dot".len() + n1;
    let after = &rest[used..];
    let mid: String = after.chars().take_while(char::is_ascii_digit).collect();
    if let Some(t2) = after[mid.len()..].strip_prefix("\\dot")
        && let Some((last, n2)) = digits_in(t2)
    {
        used += mid.len() + "\\dot".len() + n2;
        return Some((format!("{first}{mid}{last}"), used));
    }
    Some((first, used))
}

/// int.frac followed by rep repeating, as (numerator, denominator) in decimal.
fn repeating_fraction(int: &str, frac: &str, rep: &str) -> (String, String) {
    let ten = BigInt::from(10u32);
    let whole: BigInt = format!("{int}{frac}{rep}").parse().unwrap_or_default();
    let head: BigInt = format!("{int}{frac}").parse().unwrap_or_default();
    let den = (ten.pow(rep.len() as u32) - BigInt::one()) * ten.pow(frac.len() as u32);
    ((whole - head).to_string(), den.to_string())
}

/// `\text{ cm}` → ` cm `: the words inside text commands are words, not a group.
pub(super) fn unwrap_text_commands(s: &str) -> String {
    const CMDS: &[&str] = &[
        "\\textbf{",
        "\\textnormal{",
        "\\textit{",
        "\\mathit{",
        "\\textrm{",
        "\\text{",
        "\\mathrm{",
        "\\mathbf{",
        "\\mbox{",
        "\\operatorname{",
    ];
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    'scan: while let Some(i) = rest.find('\\') {
        for cmd in CMDS {
            if rest[i..].starts_with(cmd) {
                out.push_str(&rest[..i]);
                let body = &rest[i + cmd.len()..];
                let mut depth = 1;
                for (k, ch) in body.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                let inner = body[..k].trim();
                                rest = &body[k + 1..];
                                out.push(' ');
                                if matches!(inner, "or" | "and")
                                    || (matches!(inner, "e" | "i") && !cmd.starts_with("\\text"))
                                {
                                    // connectors, and `\mathrm{e}`: a constant, not a unit
                                    out.push_str(inner);
                                } else if !inner.is_empty()
                                    && inner.chars().all(|c| {
                                        c.is_ascii_alphabetic() || matches!(c, ' ' | '/' | '.')
                                    })
                                {
                                    // a unit (`\text{ cm}^2`, `\mathrm{m/s}`): dropped with its exponent
                                    for exp in ["^2", "^3", "^{2}", "^{3}"] {
                                        if let Some(r) = rest.strip_prefix(exp) {
                                            rest = r;
                                            break;
                                        }
                                    }
                                } else {
                                    out.push_str(inner);
                                }
                                out.push(' ');
                                continue 'scan;
                            }
                        }
                        _ => {}
                    }
                }
                out.push(' ');
                out.push_str(body);
                return out;
            }
        }
        out.push_str(&rest[..i + 1]);
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out
}

/// The text inside an answer that is one text command and nothing else (`\text{Evelyn}`,
/// `$\text{(C)}$`, `\mathrm{e}`), for answers that are words or a letter.
pub(super) fn sole_text(s: &str) -> Option<String> {
    let t = s.trim().trim_matches('$').trim();
    let t = t
        .strip_prefix("\\(")
        .and_then(|r| r.strip_suffix("\\)"))
        .or_else(|| t.strip_prefix("\\[").and_then(|r| r.strip_suffix("\\]")))
        .unwrap_or(t)
        .trim();
    let body = [
        "\\textbf{",
        "\\textrm{",
        "\\textnormal{",
        "\\textit{",
        "\\text{",
        "\\mathrm{",
        "\\mathbf{",
        "\\mathit{",
        "\\mbox{",
    ]
    .iter()
    .find_map(|c| t.strip_prefix(c))?;
    let inner = body.strip_suffix('}')?;
    // one group: no `}` closes it early (`\text{a} + \text{b}`)
    let mut depth = 0i32;
    for ch in inner.chars() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    let inner = inner.trim();
    (depth == 0 && !inner.is_empty()).then(|| inner.to_owned())
}

/// Matrix environments become `⟦ a ¦ b ⁋ c ¦ d ⟧` for the lexer; alignment environments
/// (`aligned`, `gathered`, …) become their lines separated by commas. Any other environment
/// (`cases`, `vmatrix`, `tabular`) is not read: `None`, so it is never half-compared.
pub(super) fn environments(s: &str) -> Option<String> {
    const MATRIX: &[&str] = &[
        "pmatrix",
        "bmatrix",
        "Bmatrix",
        "matrix",
        "smallmatrix",
        "array",
    ];
    const ALIGN: &[&str] = &[
        "aligned",
        "align",
        "align*",
        "gathered",
        "gather",
        "gather*",
        "split",
        "eqnarray",
        "eqnarray*",
    ];
    if !s.contains("\\begin") {
        return Some(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\begin{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "\\begin{".len()..];
        let close = after.find('}')?;
        let env = &after[..close];
        let mut body = &after[close + 1..];
        let end_tag = format!("\\end{{{env}}}");
        let end = body.find(&end_tag)?;
        let rest_after = &body[end + end_tag.len()..];
        body = &body[..end];
        if body.contains("\\begin{") {
            return None;
        }
        if MATRIX.contains(&env) {
            if env == "array" {
                // the column spec: `{cc}`, `{c|c}`
                let spec = body.trim_start().strip_prefix('{')?;
                body = &spec[spec.find('}')? + 1..];
            }
            out.push_str(" ⟦ ");
            out.push_str(
                &body
                    .replace("\\\\", " ⁋ ")
                    .replace('&', " ¦ ")
                    .replace("\\hline", " "),
            );
            out.push_str(" ⟧ ");
        } else if ALIGN.contains(&env) {
            out.push(' ');
            out.push_str(&body.replace("\\\\", " , ").replace('&', " "));
            out.push(' ');
        } else {
            return None;
        }
        rest = rest_after;
    }
    out.push_str(rest);
    Some(out)
}
