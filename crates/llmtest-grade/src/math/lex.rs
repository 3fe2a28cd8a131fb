//! Answer text to tokens: numbers (digit grouping, decimals, exponents), LaTeX commands,
//! words, Chinese runs (separators, numerals through `number`'s reader), and the token passes
//! that drop remarks, unwrap set-builder sets and split `\frac12`.

const MAX_TOKENS: usize = 2_000;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
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

pub(super) const FUNCS: &[&str] = &[
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
pub(super) const UNITS: &[&str] = &[
    "cm", "mm", "km", "kg", "mg", "ml", "mL", "min", "hr", "hrs", "sec", "ft", "in", "yd", "mi",
    "lb", "lbs", "oz", "mph", "m", "g", "s", "h", "L",
];
const CN_SEPS: &[&str] = &["或者", "以及", "或", "和", "及", "且", "与", "、"];

pub(super) fn lex(s: &str) -> Vec<Tok> {
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
            let depth = out.iter().fold(0i32, |d, t| match t {
                Tok::Open('(' | '[') => d + 1,
                Tok::Close(')' | ']') => d - 1,
                _ => d,
            });
            let (end, num) = lex_number(&c, i, depth > 0);
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
            } else if matches!(name.as_str(), "frac" | "binom" | "sum" | "prod") {
                out.push(Tok::Cmd(name));
            } else if name == "in" {
                out.push(Tok::Op('∈'));
            } else if name == "mid" {
                out.push(Tok::Op('|'));
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
            let glued = i > 0 && !c[i - 1].is_whitespace();
            let start = i;
            i = k;
            let lw = w.to_ascii_lowercase();
            if start >= 2 && matches!(c[start - 1], '\'' | '’') && c[start - 2].is_alphabetic() {
                // it's, let's: the rest of a word
                out.push(Tok::Word(w));
            } else if glued
                && matches!(
                    out.last(),
                    Some(Tok::Num(_) | Tok::Ident(_) | Tok::Close(_))
                )
                && let Some(rest) = ["or", "and"].iter().find_map(|c| {
                    lw.strip_prefix(c)
                        .filter(|r| r.len() == 1)
                        .map(|_| &w[c.len()..])
                })
            {
                // `x=1orx=-1`, `W(x)=1orW(x)=-1`: a connector written without spaces
                out.push(Tok::Sep);
                out.push(Tok::Ident(rest.to_owned()));
            } else if w.len() <= 2
                && UNITS.contains(&w.as_str())
                && matches!(out.last(), Some(Tok::Num(_)))
                && c.get(k).is_some_and(|ch| matches!(ch, '²' | '³'))
            {
                // `1,000.99m²`: a unit glued to the number
                out.push(Tok::Word(w));
                i = k + 1;
            } else if FUNCS.contains(&lw.as_str()) {
                out.push(Tok::Func(lw));
            } else if w == "oo" {
                // sympy's infinity, as the canonical form writes it
                out.push(Tok::Op('∞'));
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
        } else if ch == '!' && c.get(i + 1) == Some(&'=') {
            out.push(Tok::Op('≠'));
            i += 2;
        } else if matches!(ch, ':' | '：')
            && i > 0
            && ratio_side(c[i - 1], i.checked_sub(2).map(|k| c[k]))
            && c.get(i + 1)
                .is_some_and(|&n| ratio_side(n, c.get(i + 2).copied()))
            && (c[i - 1].is_ascii_digit() || c.get(i + 1).is_some_and(|n| !n.is_ascii_digit()))
        {
            // 3:2, 12:00, V_1:V_2
            out.push(Tok::Op(':'));
            i += 1;
        } else {
            i += 1;
            match ch {
                '+' | '-' | '*' | '/' | '^' | '_' | '!' | '%' | '=' | '<' | '>' | '≤' | '≥'
                | '≠' | '∞' | 'π' | '±' | '∪' | '°' | '|' | '√' | '∈' | '≈' | '¦' | '⁋' => {
                    out.push(Tok::Op(ch))
                }
                '×' | '·' => out.push(Tok::Op('*')),
                '÷' => out.push(Tok::Op('/')),
                '(' | '[' | '{' | '⦃' | '⟦' => out.push(Tok::Open(ch)),
                ')' | ']' | '}' | '⦄' | '⟧' => out.push(Tok::Close(ch)),
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

/// A character next to a ratio's `:` (`3:2`, `V_{1}:V_{2}`, `a:b`; not `Thus:x`): a digit, a
/// brace or backslash, or a single letter (`beyond` is the character past it).
fn ratio_side(ch: char, beyond: Option<char>) -> bool {
    ch.is_ascii_digit()
        || matches!(ch, '}' | '\\')
        || (ch.is_ascii_alphabetic() && !beyond.is_some_and(|b| b.is_ascii_alphabetic()))
}

/// `\{x \mid x > 2\}`, `\{x : x > 2\}` → the condition `x > 2`.
pub(super) fn set_builder(toks: Vec<Tok>) -> Vec<Tok> {
    let Some(k) = toks.windows(3).position(|w| {
        matches!(
            w,
            [Tok::Open('⦃'), Tok::Ident(_), Tok::Op('|') | Tok::Word(_)]
        ) && (w[2] == Tok::Op('|') || w[2] == Tok::Word(":".into()))
    }) else {
        return toks;
    };
    let Some(len) = toks[k + 3..].iter().position(|t| *t == Tok::Close('⦄')) else {
        return toks;
    };
    let mut out = toks[..k].to_vec();
    out.extend_from_slice(&toks[k + 3..k + 3 + len]);
    out.extend_from_slice(&toks[k + 4 + len..]);
    out
}

/// Words that open a restatement in parentheses: `\frac{2}{3} (约 0.67)`, `(i.e. 0.5)`.
const ASIDES: &[&str] = &[
    "约",
    "大约",
    "即",
    "approximately",
    "approx",
    "about",
    "roughly",
    "ie",
    "i",
];

/// `x=0 (a local maximum)`, `(约 0.67)`, `(or 0.5)`: a parenthesis holding two or more words is a remark, not a factor.
pub(super) fn remarks_dropped(toks: Vec<Tok>) -> Vec<Tok> {
    if !toks.iter().any(|t| matches!(t, Tok::Open('(' | '（'))) {
        return toks;
    }
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == Tok::Open('(')
            && let Some(len) = toks[i + 1..]
                .iter()
                .position(|t| matches!(t, Tok::Open(_) | Tok::Close(_)))
            && toks[i + 1 + len] == Tok::Close(')')
        {
            let inner = &toks[i + 1..i + 1 + len];
            let words = inner
                .iter()
                .filter(|t| matches!(t, Tok::Word(w) if w.chars().count() >= 3 || !w.is_ascii()))
                .count();
            let aside = matches!(inner.first(), Some(Tok::Sep | Tok::Op('≈')))
                || matches!(inner.first(), Some(Tok::Word(w)) if ASIDES.contains(&w.to_lowercase().as_str()));
            if aside || words >= 2 && !inner.iter().any(|t| matches!(t, Tok::Num(_))) {
                i += len + 2;
                continue;
            }
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

/// `\frac12` means ½: after `\frac` a bare digit run gives one digit per argument.
pub(super) fn split_frac_digits(toks: Vec<Tok>) -> Vec<Tok> {
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

pub(super) fn is_conclusion(w: &str) -> bool {
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
    let c: Vec<char> = run.chars().collect();
    let mut word = String::new();
    let mut i = 0;
    'outer: while i < c.len() {
        for sep in CN_SEPS {
            if crate::number::starts_with(&c, i, sep) {
                if !word.is_empty() {
                    out.push(Tok::Word(std::mem::take(&mut word)));
                }
                out.push(Tok::Sep);
                i += sep.chars().count();
                continue 'outer;
            }
        }
        if let Some((end, toks)) = cn_number(&c, i) {
            if !word.is_empty() {
                out.push(Tok::Word(std::mem::take(&mut word)));
            }
            out.extend(toks);
            i = end;
            continue;
        }
        word.push(c[i]);
        i += 1;
    }
    if !word.is_empty() {
        out.push(Tok::Word(word));
    }
}

/// A Chinese numeral at `i` as tokens, read by `number`'s reader: `十五`, `一点五`, `负二`,
/// `三分之一` (⅓), `负二分之一`, `百分之四十`. A lone `一` is a word (一共, 一半, 之一), and so
/// is a numeral after `第` (an ordinal).
fn cn_number(c: &[char], i: usize) -> Option<(usize, Vec<Tok>)> {
    if crate::number::starts_with(c, i, "百分之") {
        let (end, value, _) = crate::number::parse_cn(c, i + 3)?;
        return Some((end, vec![Tok::Num(dec_digits(value)), Tok::Op('%')]));
    }
    let neg = c[i] == '负' && c.len() > i + 1;
    let start = if neg { i + 1 } else { i };
    if start > 0 && c[start - 1] == '第' {
        return None;
    }
    let (end, value, _) = crate::number::parse_cn(c, start)?;
    let mut toks = Vec::new();
    if neg {
        toks.push(Tok::Op('-'));
    }
    if crate::number::starts_with(c, end, "分之") {
        let (end2, numer, _) = crate::number::parse_cn(c, end + 2)?;
        toks.extend([
            Tok::Open('('),
            Tok::Num(dec_digits(numer)),
            Tok::Op('/'),
            Tok::Num(dec_digits(value)),
            Tok::Close(')'),
        ]);
        return Some((end2, toks));
    }
    if end == start + 1 && !neg && (c[start] == '一' || inside_word(c, end)) {
        return None;
    }
    toks.push(Tok::Num(dec_digits(value)));
    Some((end, toks))
}

/// A one-character numeral followed by what makes it part of a word (三角形, 四边形, 二次函数,
/// 一元二次方程) is not a number; 三个, 两种, 三和四 are numbers.
fn inside_word(c: &[char], end: usize) -> bool {
    const TAILS: &[&str] = &[
        "角",
        "边",
        "次方",
        "次函数",
        "次根",
        "次式",
        "元",
        "面",
        "棱",
        "维",
        "项式",
        "位数",
        "进制",
        "倍角",
        "等分",
        "视图",
    ];
    TAILS.iter().any(|w| crate::number::starts_with(c, end, w))
}

/// `m × 10^e` as plain decimal digits (`15`, `1.5`).
fn dec_digits(d: crate::number::Dec) -> String {
    let digits = d.m.unsigned_abs().to_string();
    let body = if d.e >= 0 {
        format!("{digits}{}", "0".repeat(d.e as usize))
    } else {
        let places = d.e.unsigned_abs() as usize;
        let padded = format!(
            "{}{digits}",
            "0".repeat(places.saturating_sub(digits.len() - 1))
        );
        let cut = padded.len() - places;
        format!("{}.{}", &padded[..cut], &padded[cut..])
    };
    if d.m < 0 { format!("-{body}") } else { body }
}

/// Digits with `,` thousands grouping and a decimal part: (end, digits without commas).
/// Inside brackets a single group is a separator: `(12,102)` is a pair, `(1,234,567)` one number.
fn lex_number(c: &[char], start: usize, in_brackets: bool) -> (usize, String) {
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
        let single_in_brackets = in_brackets && groups.len() == 1;
        let grouping = !(groups.is_empty() || single_in_brackets);
        if grouping {
            for g in groups {
                s.extend(&c[g + 1..g + 4]);
            }
            i = k;
        } else if groups.is_empty() {
            // SI grouping with a (thin) space: `1 000`, `58 159 881`
            let space = |ch: &char| matches!(ch, ' ' | '\u{2009}' | '\u{202F}' | '\u{A0}');
            let mut k = i;
            while c.get(k).is_some_and(space)
                && (1..=3).all(|d| c.get(k + d).is_some_and(char::is_ascii_digit))
                && !c
                    .get(k + 4)
                    .is_some_and(|ch| ch.is_ascii_digit() || *ch == ',')
            {
                s.extend(&c[k + 1..k + 4]);
                k += 4;
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
