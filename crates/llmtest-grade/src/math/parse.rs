//! LaTeX and plain-text answers to a [`Node`] tree.
//!
//! The parser is a hand-written recursive descent over a token list: linear in the input
//! apart from nesting, which is capped ([`MAX_DEPTH`]), as are the input length
//! ([`MAX_INPUT`]) and the token count.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

/// Characters of one answer the parser looks at (the final answer, not the whole output).
pub(crate) const MAX_INPUT: usize = 4_000;
const MAX_TOKENS: usize = 2_000;
const MAX_DEPTH: usize = 64;

/// A parsed answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// A number; `Some(places)` when written as a decimal (`0.1667` → 4).
    Num(BigRational, Option<u32>),
    Var(String),
    Pi,
    E,
    Inf,
    Add(Vec<Node>),
    Mul(Vec<Node>),
    Div(Box<Node>, Box<Node>),
    Neg(Box<Node>),
    Pow(Box<Node>, Box<Node>),
    Func(String, Box<Node>),
    /// `x%`: worth x/100.
    Percent(Box<Node>),
    /// `45^\circ`: worth 45, and also π/4 when compared with radians.
    Deg(Box<Node>),
    Fact(Box<Node>),
    /// `a ± b`: two answers.
    PlusMinus(Box<Node>, Box<Node>),
    /// `(a, b, …)`; with two parts it may also be an open interval.
    Tuple(Vec<Node>),
    /// (left closed, low, high, right closed)
    Interval(bool, Box<Node>, Box<Node>, bool),
    Set(Vec<Node>),
    Union(Vec<Node>),
    /// Top-level answers separated by `,` `或` `and` …: compared as an unordered collection.
    List(Vec<Node>),
    Eq(Box<Node>, Box<Node>),
    Labelled(String, Box<Node>),
    Text(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(String),
    Ident(String),
    Func(String),
    Cmd(String),
    Word(String),
    Sep,
    Op(char),
    Open(char),
    Close(char),
    Comma,
}

const FUNCS: &[&str] = &[
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "ln", "log", "exp",
    "sqrt", "abs", "sinh", "cosh", "tanh", "lg",
];
const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "theta",
    "lambda",
    "mu",
    "sigma",
    "omega",
    "phi",
    "varphi",
    "rho",
    "tau",
    "psi",
    "xi",
    "eta",
    "zeta",
    "kappa",
    "nu",
    "chi",
];
const UNITS: &[&str] = &[
    "cm", "mm", "km", "kg", "mg", "ml", "mL", "min", "hr", "hrs", "sec", "ft", "in", "yd", "mi",
    "lb", "lbs", "oz", "mph", "m", "g", "s", "h", "L",
];
const CN_SEPS: &[&str] = &["或者", "以及", "或", "和", "及", "且", "与", "、"];

/// LaTeX spellings folded before lexing. Longer commands come before their prefixes.
const REPLACE: &[(&str, &str)] = &[
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
    ("\\in", " "),
];

/// Parses an answer; `None` when nothing mathematical is in it.
pub(crate) fn parse(s: &str) -> Option<Node> {
    let mut text = crate::number::fold(s.trim());
    if text.chars().count() > MAX_INPUT {
        text = text
            .chars()
            .rev()
            .take(MAX_INPUT)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
    }
    text = unwrap_text_commands(&text);
    text = repeating_decimals(&text);
    for (from, to) in REPLACE {
        if text.contains(from) {
            text = text.replace(from, to);
        }
    }
    let mut toks = split_frac_digits(lex(&text));
    if toks.is_empty() {
        return None;
    }
    // "(x-2)(x-3)=0，所以 x=2 或 x=3": the conclusion is what follows the last "so"
    if let Some(k) = toks
        .iter()
        .rposition(|t| matches!(t, Tok::Word(w) if is_conclusion(w)))
        && k > 0
        && toks[k + 1..]
            .iter()
            .any(|t| matches!(t, Tok::Num(_) | Tok::Ident(_)))
    {
        toks.drain(..k);
    }
    let mut items = Vec::new();
    for part in split_top(&toks, |t| matches!(t, Tok::Sep | Tok::Comma)) {
        if let Some(n) = item(part) {
            items.push(n);
        }
    }
    match items.len() {
        0 => {
            let words: Vec<&str> = toks
                .iter()
                .filter_map(|t| {
                    if let Tok::Word(w) = t {
                        Some(w.as_str())
                    } else {
                        None
                    }
                })
                .collect();
            (!words.is_empty()).then(|| Node::Text(words.join(" ")))
        }
        1 => items.pop(),
        _ => Some(Node::List(items)),
    }
}

/// `0.\overline{3}`, `0.1\overline{6}`, `0.\dot{3}`, `0.\dot{1}4\dot{2}` → the exact fraction.
fn repeating_decimals(s: &str) -> String {
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
fn unwrap_text_commands(s: &str) -> String {
    const CMDS: &[&str] = &[
        "\\textbf{",
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
                                if matches!(inner, "or" | "and") {
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

fn lex(s: &str) -> Vec<Tok> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() && out.len() < MAX_TOKENS {
        let ch = c[i];
        if ch.is_whitespace() || ch == '$' || ch == '¥' {
            i += 1;
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let (end, num) = lex_number(&c, i);
            out.push(Tok::Num(num));
            i = end;
        } else if ch == '\\' {
            let mut k = i + 1;
            while k < c.len() && c[k].is_ascii_alphabetic() {
                k += 1;
            }
            let name: String = c[i + 1..k].iter().collect();
            i = k.max(i + 1);
            if name.is_empty() {
                continue;
            }
            if FUNCS.contains(&name.as_str()) {
                out.push(Tok::Func(name));
            } else if GREEK.contains(&name.as_str()) {
                out.push(Tok::Ident(name));
            } else if matches!(name.as_str(), "frac" | "binom") {
                out.push(Tok::Cmd(name));
            } else if matches!(name.as_str(), "or" | "and" | "quad") {
                out.push(Tok::Sep);
            }
            // other commands (\mathbb, \hat, …) carry no value of their own
        } else if ch.is_ascii_alphabetic() {
            let mut k = i;
            while k < c.len() && c[k].is_ascii_alphabetic() {
                k += 1;
            }
            let w: String = c[i..k].iter().collect();
            i = k;
            let lw = w.to_ascii_lowercase();
            if FUNCS.contains(&lw.as_str()) {
                out.push(Tok::Func(lw));
            } else if lw == "pi" {
                out.push(Tok::Op('π'));
            } else if matches!(lw.as_str(), "inf" | "infty" | "infinity") {
                out.push(Tok::Op('∞'));
            } else if matches!(lw.as_str(), "or" | "and") {
                out.push(Tok::Sep);
            } else if w.len() == 1 {
                out.push(Tok::Ident(w));
            } else if UNITS.contains(&w.as_str())
                && matches!(out.last(), Some(Tok::Num(_)) | Some(Tok::Op('%')))
            {
                out.push(Tok::Word(w));
            } else if w.len() == 2
                && w.chars().all(|c| c.is_ascii_lowercase())
                && !matches!(
                    lw.as_str(),
                    "is" | "so"
                        | "of"
                        | "to"
                        | "at"
                        | "be"
                        | "we"
                        | "it"
                        | "an"
                        | "as"
                        | "by"
                        | "on"
                        | "if"
                        | "no"
                        | "or"
                )
            {
                for ch in w.chars() {
                    out.push(Tok::Ident(ch.to_string()));
                }
            } else {
                out.push(Tok::Word(w));
            }
        } else if is_cjk(ch) {
            let mut k = i;
            while k < c.len() && is_cjk(c[k]) {
                k += 1;
            }
            let run: String = c[i..k].iter().collect();
            i = k;
            lex_cjk(&run, &mut out);
        } else {
            i += 1;
            match ch {
                '+' | '-' | '*' | '/' | '^' | '_' | '!' | '%' | '=' | '<' | '>' | '≤' | '≥'
                | '≠' | '∞' | 'π' | '±' | '∪' | '°' | '|' | '√' | '∈' => {
                    out.push(Tok::Op(ch))
                }
                '×' | '·' => out.push(Tok::Op('*')),
                '÷' => out.push(Tok::Op('/')),
                '(' | '[' | '{' | '⦃' => out.push(Tok::Open(ch)),
                ')' | ']' | '}' | '⦄' => out.push(Tok::Close(ch)),
                ',' => out.push(Tok::Comma),
                ';' | '；' | '、' => out.push(Tok::Sep),
                ':' | '：' => out.push(Tok::Word(":".into())),
                '。' => out.push(Tok::Sep),
                _ => {}
            }
        }
    }
    out
}

/// `\frac12` means ½: after `\frac` a bare digit run gives one digit per argument.
fn split_frac_digits(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out = Vec::with_capacity(toks.len());
    let mut after_frac = 0u8;
    for t in toks {
        match t {
            Tok::Cmd(ref c) if c == "frac" => {
                after_frac = 2;
                out.push(t);
            }
            Tok::Num(ref d) if after_frac > 0 && !d.contains('.') && d.len() > 1 => {
                let mut rest = d.as_str();
                while after_frac > 0 && !rest.is_empty() {
                    out.push(Tok::Num(rest[..1].to_owned()));
                    rest = &rest[1..];
                    after_frac -= 1;
                }
                if !rest.is_empty() {
                    out.push(Tok::Num(rest.to_owned()));
                }
            }
            other => {
                after_frac = if matches!(other, Tok::Open(_)) {
                    0
                } else {
                    after_frac.saturating_sub(1)
                };
                out.push(other);
            }
        }
    }
    out
}

fn is_conclusion(w: &str) -> bool {
    ["所以", "因此", "综上", "解得", "故"]
        .iter()
        .any(|c| w.starts_with(c))
        || w == "即"
        || matches!(
            w.to_ascii_lowercase().as_str(),
            "so" | "thus" | "therefore" | "hence"
        )
}

fn is_cjk(ch: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&ch) || ('\u{3400}'..='\u{4DBF}').contains(&ch)
}

fn lex_cjk(run: &str, out: &mut Vec<Tok>) {
    let mut word = String::new();
    let mut rest = run;
    'outer: while !rest.is_empty() {
        for sep in CN_SEPS {
            if let Some(r) = rest.strip_prefix(sep) {
                if !word.is_empty() {
                    out.push(Tok::Word(std::mem::take(&mut word)));
                }
                out.push(Tok::Sep);
                rest = r;
                continue 'outer;
            }
        }
        let ch = rest.chars().next().unwrap_or(' ');
        word.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    if !word.is_empty() {
        out.push(Tok::Word(word));
    }
}

/// Digits with `,` thousands grouping and a decimal part: (end, digits without commas).
fn lex_number(c: &[char], start: usize) -> (usize, String) {
    let mut i = start;
    let mut s = String::new();
    while i < c.len() && c[i].is_ascii_digit() && s.len() < 400 {
        s.push(c[i]);
        i += 1;
    }
    // 1,234,567: groups of exactly three after a first group of at most three
    if !s.is_empty() && s.len() <= 3 {
        let mut k = i;
        let mut groups = Vec::new();
        while k + 3 < c.len() + 1
            && c.get(k) == Some(&',')
            && (1..=3).all(|d| c.get(k + d).is_some_and(char::is_ascii_digit))
            && !c.get(k + 4).is_some_and(char::is_ascii_digit)
        {
            groups.push(k);
            k += 4;
        }
        if !groups.is_empty() {
            for g in groups {
                s.extend(&c[g + 1..g + 4]);
            }
            i = k;
        }
    }
    if i + 1 < c.len() && c[i] == '.' && c[i + 1].is_ascii_digit() {
        s.push('.');
        i += 1;
        while i < c.len() && c[i].is_ascii_digit() && s.len() < 800 {
            s.push(c[i]);
            i += 1;
        }
    }
    // 1.5e3, 2E-4 (not 2e, which is 2·e)
    if i < c.len() && (c[i] == 'e' || c[i] == 'E') {
        let mut k = i + 1;
        let mut exp = String::from("e");
        if k < c.len() && (c[k] == '-' || c[k] == '+') {
            exp.push(c[k]);
            k += 1;
        }
        let start = k;
        while k < c.len() && c[k].is_ascii_digit() && k - start < 3 {
            exp.push(c[k]);
            k += 1;
        }
        if k > start && !c.get(k).is_some_and(|ch| ch.is_ascii_alphanumeric()) {
            s.push_str(&exp);
            i = k;
        }
    }
    (i, s)
}

fn split_top(toks: &[Tok], is_sep: impl Fn(&Tok) -> bool) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (k, t) in toks.iter().enumerate() {
        match t {
            Tok::Open(_) => depth += 1,
            Tok::Close(_) => depth -= 1,
            Tok::Op('|') => {}
            _ => {}
        }
        if depth <= 0 && is_sep(t) {
            parts.push(&toks[start..k]);
            start = k + 1;
            depth = 0;
        }
    }
    parts.push(&toks[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// One answer item: words around it are its label; the math in it is parsed.
fn item(toks: &[Tok]) -> Option<Node> {
    let mut label = String::new();
    let mut segments: Vec<Vec<Tok>> = vec![Vec::new()];
    for t in toks {
        match t {
            Tok::Word(w) => {
                label.push_str(w);
                if !segments.last().is_some_and(Vec::is_empty) {
                    segments.push(Vec::new());
                }
            }
            other => segments.last_mut().expect("segments").push(other.clone()),
        }
    }
    // words between stretches of math: the last stretch is the answer
    let math = segments.into_iter().rev().find(|s| {
        s.iter().any(|t| {
            matches!(
                t,
                Tok::Num(_)
                    | Tok::Ident(_)
                    | Tok::Op('π')
                    | Tok::Op('∞')
                    | Tok::Func(_)
                    | Tok::Cmd(_)
            )
        })
    })?;
    let node = relation(&math)?;
    let label = clean_label(&label);
    Some(if label.is_empty() {
        node
    } else {
        Node::Labelled(label, Box::new(node))
    })
}

/// Label words without filler, so `极大值点为` and `极大值` match.
pub(crate) fn clean_label(s: &str) -> String {
    let mut t: String = s
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    for filler in [
        "所以", "因此", "故", "则", "函数", "取得", "处", "在", "的", "为", "是", "时", "点", "得",
        "有", "解", "答案", "最终",
    ] {
        t = t.replace(filler, "");
    }
    t
}

fn relation(toks: &[Tok]) -> Option<Node> {
    let union = split_top(toks, |t| matches!(t, Tok::Op('∪')));
    if union.len() > 1 {
        let parts: Vec<Node> = union.into_iter().filter_map(relation).collect();
        return Some(Node::Union(parts));
    }
    let mut parts: Vec<(Option<char>, &[Tok])> = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut op = None;
    for (k, t) in toks.iter().enumerate() {
        match t {
            Tok::Open(_) => depth += 1,
            Tok::Close(_) => depth -= 1,
            Tok::Op(o @ ('=' | '<' | '>' | '≤' | '≥' | '≠')) if depth <= 0 => {
                parts.push((op, &toks[start..k]));
                op = Some(*o);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push((op, &toks[start..]));
    let exprs: Vec<(Option<char>, Node)> = parts
        .into_iter()
        .filter(|(_, p)| !p.is_empty())
        .enumerate()
        .filter_map(|(k, (o, p))| {
            // `f(x) = …`: the left side names a function
            if k == 0
                && let Some(name) = function_name(p)
            {
                return Some((o, Node::Var(name)));
            }
            Parser::new(p).whole().map(|n| (o, n))
        })
        .collect();
    match exprs.as_slice() {
        [] => None,
        [(_, one)] => Some(one.clone()),
        [(_, a), (Some('='), b)] => Some(Node::Eq(Box::new(a.clone()), Box::new(b.clone()))),
        [(_, a), (Some(o), b)] => Some(inequality(a, *o, b)),
        [(_, a), (Some(o1), x), (Some(o2), b)] if is_var(x) && same_dir(*o1, *o2) => {
            // a < x ≤ b
            let (lo, lo_op, hi, hi_op) = if matches!(o1, '<' | '≤') {
                (a, *o1, b, *o2)
            } else {
                (b, *o2, a, *o1)
            };
            Some(Node::Interval(
                lo_op == '≤' || lo_op == '≥',
                Box::new(lo.clone()),
                Box::new(hi.clone()),
                hi_op == '≤' || hi_op == '≥',
            ))
        }
        // x = 5 + 13 = 18: a chain of equalities ends in the value
        many if many.iter().skip(1).all(|(o, _)| *o == Some('=')) => {
            let first = &many[0].1;
            let last = &many[many.len() - 1].1;
            if is_var(first) {
                Some(Node::Eq(Box::new(first.clone()), Box::new(last.clone())))
            } else {
                Some(last.clone())
            }
        }
        _ => None,
    }
}

/// `f(x)`, `g(t)`, `f(x, y)`: a name applied to distinct plain variables.
fn function_name(p: &[Tok]) -> Option<String> {
    let [Tok::Ident(f), Tok::Open('('), args @ .., Tok::Close(')')] = p else {
        return None;
    };
    let mut names = Vec::new();
    for (k, t) in args.iter().enumerate() {
        match (k % 2, t) {
            (0, Tok::Ident(v)) if v != f => names.push(v.as_str()),
            (1, Tok::Comma) => {}
            _ => return None,
        }
    }
    (!names.is_empty()).then(|| format!("{f}({})", names.join(",")))
}

fn same_dir(a: char, b: char) -> bool {
    let up = |o: char| matches!(o, '<' | '≤');
    let down = |o: char| matches!(o, '>' | '≥');
    (up(a) && up(b)) || (down(a) && down(b))
}

pub(crate) fn is_var(n: &Node) -> bool {
    matches!(n, Node::Var(_))
}

/// `x > 2` → (2, ∞); `x ≤ 3` → (-∞, 3]; anything else stays a relation (as text).
fn inequality(a: &Node, op: char, b: &Node) -> Node {
    let inf = || Box::new(Node::Inf);
    let ninf = || Box::new(Node::Neg(Box::new(Node::Inf)));
    let (var_left, bound) = if is_var(a) {
        (true, b)
    } else if is_var(b) {
        (false, a)
    } else {
        return Node::Text(format!("{a:?}{op}{b:?}"));
    };
    // normalise to "x op bound"
    let op = if var_left {
        op
    } else {
        match op {
            '<' => '>',
            '>' => '<',
            '≤' => '≥',
            '≥' => '≤',
            o => o,
        }
    };
    let bd = Box::new(bound.clone());
    match op {
        '>' => Node::Interval(false, bd, inf(), false),
        '≥' => Node::Interval(true, bd, inf(), false),
        '<' => Node::Interval(false, ninf(), bd, false),
        '≤' => Node::Interval(false, ninf(), bd, true),
        _ => Node::Text(format!("{a:?}{op}{b:?}")),
    }
}

struct Parser<'a> {
    t: &'a [Tok],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(t: &'a [Tok]) -> Self {
        Parser { t, i: 0, depth: 0 }
    }

    /// The whole token list as one expression; trailing junk (units) is ignored.
    fn whole(mut self) -> Option<Node> {
        let n = self.expr()?;
        Some(n)
    }

    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }

    fn bump(&mut self) -> Option<&Tok> {
        let t = self.t.get(self.i);
        self.i += 1;
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn expr(&mut self) -> Option<Node> {
        self.enter()?;
        let mut terms = vec![self.term()?];
        loop {
            if self.eat(&Tok::Op('+')) {
                terms.push(self.term()?);
            } else if self.eat(&Tok::Op('-')) {
                terms.push(Node::Neg(Box::new(self.term()?)));
            } else if self.eat(&Tok::Op('±')) {
                let rhs = self.term()?;
                let lhs = if terms.len() == 1 {
                    terms.pop()?
                } else {
                    Node::Add(std::mem::take(&mut terms))
                };
                terms = vec![Node::PlusMinus(Box::new(lhs), Box::new(rhs))];
            } else {
                break;
            }
        }
        self.depth -= 1;
        Some(if terms.len() == 1 {
            terms.pop()?
        } else {
            Node::Add(terms)
        })
    }

    fn starts_primary(&self) -> bool {
        matches!(
            self.peek(),
            Some(
                Tok::Num(_)
                    | Tok::Ident(_)
                    | Tok::Func(_)
                    | Tok::Cmd(_)
                    | Tok::Open('(' | '{' | '[' | '⦃')
                    | Tok::Op('π' | '√' | '∞')
            )
        )
    }

    fn term(&mut self) -> Option<Node> {
        let mut factors = vec![self.unary()?];
        loop {
            if self.eat(&Tok::Op('*')) {
                factors.push(self.unary()?);
            } else if self.eat(&Tok::Op('/')) {
                let d = self.unary()?;
                let n = if factors.len() == 1 {
                    factors.pop()?
                } else {
                    Node::Mul(std::mem::take(&mut factors))
                };
                factors = vec![Node::Div(Box::new(n), Box::new(d))];
            } else if self.starts_primary() && !matches!(self.peek(), Some(Tok::Open('['))) {
                // implicit product: 2x, 2\pi, x(x+1); a mixed number 1\frac{1}{2} is a sum
                let next = self.unary()?;
                let mixed = matches!((factors.last(), &next), (Some(Node::Num(_, None)), Node::Div(a, b)) if matches!((&**a, &**b), (Node::Num(_, None), Node::Num(_, None))) && factors.len() == 1)
                    && self
                        .t
                        .get(self.i.wrapping_sub(1))
                        .is_some_and(|t| matches!(t, Tok::Close('}')));
                if mixed {
                    let whole = factors.pop()?;
                    factors.push(Node::Add(vec![whole, next]));
                } else {
                    factors.push(next);
                }
            } else {
                break;
            }
        }
        Some(if factors.len() == 1 {
            factors.pop()?
        } else {
            Node::Mul(factors)
        })
    }

    fn unary(&mut self) -> Option<Node> {
        self.enter()?;
        let r = if self.eat(&Tok::Op('-')) {
            Some(Node::Neg(Box::new(self.unary()?)))
        } else if self.eat(&Tok::Op('+')) {
            self.unary()
        } else if self.eat(&Tok::Op('±')) {
            let v = self.unary()?;
            Some(Node::PlusMinus(
                Box::new(Node::Num(BigRational::zero(), None)),
                Box::new(v),
            ))
        } else {
            self.power()
        };
        self.depth -= 1;
        r
    }

    fn power(&mut self) -> Option<Node> {
        let base = self.postfix()?;
        if self.eat(&Tok::Op('^')) {
            let exp = if self.peek() == Some(&Tok::Op('-')) {
                self.unary()?
            } else {
                self.power_operand()?
            };
            let p = Node::Pow(Box::new(base), Box::new(exp));
            return Some(self.postfix_ops(p));
        }
        Some(base)
    }

    fn power_operand(&mut self) -> Option<Node> {
        self.enter()?;
        let r = self.power();
        self.depth -= 1;
        r
    }

    fn postfix(&mut self) -> Option<Node> {
        let p = self.primary()?;
        Some(self.postfix_ops(p))
    }

    fn postfix_ops(&mut self, mut p: Node) -> Node {
        loop {
            match self.peek() {
                Some(Tok::Op('!')) => {
                    self.i += 1;
                    p = Node::Fact(Box::new(p));
                }
                Some(Tok::Op('%')) => {
                    self.i += 1;
                    p = Node::Percent(Box::new(p));
                }
                Some(Tok::Op('°')) => {
                    self.i += 1;
                    p = Node::Deg(Box::new(p));
                }
                Some(Tok::Word(_)) => self.i += 1,
                _ => return p,
            }
        }
    }

    /// `{…}` as a LaTeX group.
    fn group(&mut self) -> Option<Node> {
        if self.eat(&Tok::Open('{')) {
            let n = self.expr()?;
            self.eat(&Tok::Close('}'));
            Some(n)
        } else {
            // \frac12: single tokens (the lexer split the digits)
            match self.bump()?.clone() {
                Tok::Num(d) => num(&d),
                Tok::Ident(v) => Some(Node::Var(v)),
                Tok::Op('π') => Some(Node::Pi),
                _ => None,
            }
        }
    }

    fn primary(&mut self) -> Option<Node> {
        self.enter()?;
        let r = self.primary_inner();
        self.depth -= 1;
        r
    }

    fn primary_inner(&mut self) -> Option<Node> {
        let tok = self.bump()?.clone();
        match tok {
            Tok::Num(d) => num(&d),
            Tok::Ident(v) => {
                let mut name = v;
                if self.eat(&Tok::Op('_')) {
                    let sub = match self.bump()?.clone() {
                        Tok::Num(d) => d,
                        Tok::Ident(s) => s,
                        Tok::Open('{') => {
                            let mut s = String::new();
                            while let Some(t) = self.bump() {
                                match t {
                                    Tok::Close('}') => break,
                                    Tok::Num(d) | Tok::Ident(d) => s.push_str(d),
                                    _ => {}
                                }
                            }
                            s
                        }
                        _ => String::new(),
                    };
                    name = format!("{name}_{sub}");
                }
                Some(if name == "e" {
                    Node::E
                } else {
                    Node::Var(name)
                })
            }
            Tok::Op('π') => Some(Node::Pi),
            Tok::Op('∞') => Some(Node::Inf),
            Tok::Op('√') => {
                let a = self.power()?;
                Some(Node::Func("sqrt".into(), Box::new(a)))
            }
            Tok::Func(f) => {
                if f == "sqrt" && self.eat(&Tok::Open('[')) {
                    // \sqrt[n]{x} = x^(1/n)
                    let n = self.expr()?;
                    self.eat(&Tok::Close(']'));
                    let x = self.group()?;
                    return Some(Node::Pow(
                        Box::new(x),
                        Box::new(Node::Div(
                            Box::new(Node::Num(BigRational::one(), None)),
                            Box::new(n),
                        )),
                    ));
                }
                // \log_2 16 = ln 16 / ln 2
                let base = if f == "log" && self.eat(&Tok::Op('_')) {
                    Some(self.power_operand()?)
                } else {
                    None
                };
                // sin^2 x
                let mut pow = None;
                if self.eat(&Tok::Op('^')) {
                    pow = Some(self.power_operand()?);
                }
                let arg = if matches!(self.peek(), Some(Tok::Open('(' | '{'))) {
                    self.primary()?
                } else {
                    self.power()?
                };
                let f = match base {
                    Some(b) => Node::Div(
                        Box::new(Node::Func("ln".into(), Box::new(arg))),
                        Box::new(Node::Func("ln".into(), Box::new(b))),
                    ),
                    None => Node::Func(f, Box::new(arg)),
                };
                Some(match pow {
                    Some(p) => Node::Pow(Box::new(f), Box::new(p)),
                    None => f,
                })
            }
            Tok::Cmd(c) if c == "frac" => {
                let a = self.group()?;
                let b = self.group()?;
                Some(Node::Div(Box::new(a), Box::new(b)))
            }
            Tok::Cmd(_) => {
                let a = self.group()?;
                let b = self.group()?;
                Some(Node::Func(
                    "binom".into(),
                    Box::new(Node::Tuple(vec![a, b])),
                ))
            }
            Tok::Op('|') => {
                let a = self.expr()?;
                self.eat(&Tok::Op('|'));
                Some(Node::Func("abs".into(), Box::new(a)))
            }
            Tok::Open(open) => {
                let mut parts = vec![self.expr()?];
                let close;
                loop {
                    match self.bump() {
                        Some(Tok::Comma) | Some(Tok::Sep) => parts.push(self.expr()?),
                        Some(Tok::Close(c)) => {
                            close = *c;
                            break;
                        }
                        Some(_) => {}
                        None => {
                            close = ' ';
                            break;
                        }
                    }
                }
                Some(bracketed(open, parts, close))
            }
            _ => None,
        }
    }
}

fn bracketed(open: char, mut parts: Vec<Node>, close: char) -> Node {
    match (open, parts.len()) {
        ('⦃', _) => Node::Set(parts),
        ('{', 1) | ('(', 1) => parts.pop().expect("one part"),
        ('{', _) => Node::Set(parts),
        ('[', 2) | ('(', 2) if close != ')' || open != '(' => {
            let hi = parts.pop().expect("two parts");
            let lo = parts.pop().expect("two parts");
            Node::Interval(open == '[', Box::new(lo), Box::new(hi), close == ']')
        }
        ('[', 1) => parts.pop().expect("one part"),
        _ => Node::Tuple(parts),
    }
}

/// A decimal literal as an exact rational, remembering its decimal places.
pub(crate) fn num(d: &str) -> Option<Node> {
    let (mant, exp) = match d.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (d, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{int}{frac}");
    let n: BigInt = digits.parse().ok()?;
    let den = BigInt::from(10u32).pow(frac.len() as u32);
    let ten = BigRational::from_integer(BigInt::from(10u32));
    let scale = if exp >= 0 {
        num_traits::pow(ten, exp as usize)
    } else {
        num_traits::pow(ten, exp.unsigned_abs() as usize).recip()
    };
    let places = (!frac.is_empty() && exp == 0).then_some(frac.len() as u32);
    Some(Node::Num(BigRational::new(n, den) * scale, places))
}
