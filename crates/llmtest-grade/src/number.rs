//! The `number` assertion: a numeric answer with a unit, read the way people write it.
//!
//! ```yaml
//! - type: number
//!   value: 58159881          # or a string: "58,159,881", "{{ target }}"
//!   unit: 千元               # optional; default: no unit
//!   tolerance: {rel: 0.001}  # optional; default: rel 0.001 (±0.1%), abs 0
//!   pick: first              # optional; first | last | any; default: first
//!   rounded: true            # optional; default: true
//! ```
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `value` | required | the gold number, a number or a string (`"58,159,881"`, `"-3.5"`, `"1.2e9"`) |
//! | `unit` | none | the gold's unit: an optional scale (`千 万 百万 千万 亿 万亿`, `thousand million billion trillion`, `k M B`) then an optional currency (`元 人民币 RMB CNY ¥ yuan`, `美元 USD $`, `港元 HKD`, `欧元 EUR €`), `%`, or any other word (`人`, `km`) |
//! | `tolerance` | `{rel: 0.001}` | passes when \|found − gold\| ≤ max(`rel`·\|gold\|, `abs`); `abs` is in the gold's unit. Giving `tolerance` replaces the default: `{abs: 0}` means exact |
//! | `pick` | `first` | which number counts: the `first` stated amount, the `last` one (a final answer after working), or `any`. Years, and operands of a calculation shown in the answer (`A − B = C`), count only when nothing else is there |
//! | `rounded` | `true` | also accept a rounded answer that shows at least three significant digits and equals the gold rounded to the digits shown (`1.49万` for 14,884; `582亿` for 58,159,881千元) |
//!
//! Numbers are read with thousands separators (`,` `，`, LaTeX `{,}` and `\,`, SI spaces
//! `58 159 881`), Chinese
//! 4-digit grouping (`5815,9881`, `5亿8159万`), full-width digits and punctuation, decimals,
//! scientific notation (`5.8e10`, `5.8×10^{10}`), negatives (`-`, `−`, `负`, accounting
//! parentheses `(1,234)`), percentages (`%`, `percent`, `百分之`), scale words, currency words
//! and Chinese numerals (`五百八十一亿六千万`), inside markdown or LaTeX. A bare number is
//! read in the gold's unit (or, when that unit has a scale, as a count of ones: `12000` for
//! a gold of 1.2万); a number with a scale or currency is converted to it; a number
//! in another dimension (a percentage when the gold is an amount, dollars when it is yuan)
//! is not an amount of the gold's kind and is passed over. Years (`2024年`, `in 2024`),
//! dates, ordinals (`第3`), list markers (`1. `) and numbers glued to identifiers
//! (`Qwen2.5`) are not amounts. A count of something else (`3,530台` when the gold is a
//! percentage) is not an amount of the gold's kind either. When the gold is negative, an
//! amount after a word saying it went down (`下降3.17%`, `decreased by 3.17%`) is read as
//! negative.
//!
//! The failure message says what was found and how it was read:
//! `535.3亿元 = 53,530,000千元 ≠ 58,159,881千元 ±0.1%`.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use llmtest_spec::CheckError;

use crate::grader::{FnFactory, Grade, Grader, GraderContext, GraderFactory, Sample, parse_params};

/// Answers longer than this many characters are graded on their first and last halves of
/// this size, which keeps grading time bounded on adversarial output.
pub(crate) const MAX_CHARS: usize = 100_000;
/// Digit runs longer than this are not read as numbers (they are identifiers or garbage).
const MAX_DIGITS: usize = 30;

pub(crate) fn factory() -> Arc<dyn GraderFactory> {
    Arc::new(FnFactory::new(
        "number",
        |p: &Map<String, Value>, _: &GraderContext| {
            let g = NumberGrader::from_params(p)?;
            Ok(Arc::new(g) as Arc<dyn Grader>)
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    value: GoldValue,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    tolerance: Option<Tolerance>,
    #[serde(default)]
    pick: Pick,
    #[serde(default = "yes")]
    rounded: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(untagged)]
enum GoldValue {
    N(serde_json::Number),
    S(String),
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(deny_unknown_fields)]
struct Tolerance {
    #[serde(default)]
    rel: Option<f64>,
    #[serde(default)]
    abs: Option<f64>,
}

/// Which number in the answer counts.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    /// The first stated amount (the default: table QA answers lead with it).
    #[default]
    First,
    /// The last one (a final answer after working).
    Last,
    /// Any stated amount.
    Any,
}

/// A `number` grader built from its parameters.
pub struct NumberGrader {
    gold: Dec,
    unit: Unit,
    unit_text: String,
    rel: f64,
    abs: f64,
    pick: Pick,
    rounded: bool,
    expected: String,
}

impl NumberGrader {
    /// Builds the grader from an assertion's parameters (see the module docs).
    pub fn from_params(p: &Map<String, Value>) -> Result<NumberGrader, CheckError> {
        let Params {
            value,
            unit,
            tolerance,
            pick,
            rounded,
        } = parse_params(p)?;
        let text = match value {
            GoldValue::N(n) => n.to_string(),
            GoldValue::S(s) => s,
        };
        let gold = parse_plain(&text).ok_or_else(|| {
            CheckError::new(format!("`value` must be a number, got {text:?}"))
                .with_hint("write the gold number alone (`58159881` or \"58,159,881\") and its unit under `unit`")
        })?;
        let unit_text = unit.unwrap_or_default().trim().to_owned();
        let parsed = Unit::parse(&unit_text).ok_or_else(|| {
            CheckError::new(format!("unknown unit {unit_text:?}"))
                .with_hint("a unit is an optional scale (千, 万, 亿, million, …) then a currency (元, RMB, $, …), `%`, or one plain word")
        })?;
        let (rel, abs) = match tolerance {
            None => (0.001, 0.0),
            Some(t) => (t.rel.unwrap_or(0.0), t.abs.unwrap_or(0.0)),
        };
        for (name, v) in [("rel", rel), ("abs", abs)] {
            if !v.is_finite() || v < 0.0 {
                return Err(CheckError::new(format!(
                    "`tolerance.{name}` must be a non-negative number, got {v}"
                )));
            }
        }
        let expected = format!(
            "{}{}{}",
            gold.display(),
            unit_text,
            tolerance_text(rel, abs, &unit_text)
        );
        Ok(NumberGrader {
            gold,
            unit: parsed,
            unit_text,
            rel,
            abs,
            pick,
            rounded,
            expected,
        })
    }

    /// Grades an answer (reasoning already removed).
    pub fn grade_answer(&self, answer: &str) -> Grade {
        let text = normalize(answer);
        let cands = scan(&text, &self.unit);
        let usable: Vec<&Cand> = cands.iter().filter(|c| self.compatible(c)).collect();
        if usable.is_empty() {
            let found = match cands.first() {
                Some(c) => format!("{} (not an amount in {})", c.text, self.unit_label()),
                None => format!("no number in {}", crate::text::excerpt(answer)),
            };
            return Grade::binary(false, self.expected.clone(), found);
        }
        let chosen: Vec<&Cand> = match self.pick {
            Pick::Any => usable.clone(),
            Pick::First => vec![*usable.iter().find(|c| !c.minor).unwrap_or(&usable[0])],
            Pick::Last => vec![
                *usable
                    .iter()
                    .rev()
                    .find(|c| !c.minor)
                    .unwrap_or(&usable[usable.len() - 1]),
            ],
        };
        let readings: Vec<(Dec, &Cand)> = chosen.iter().map(|c| (self.convert(c), *c)).collect();
        // A bare number is read in the gold's unit (`58,159,881` for 千元), or, when that
        // unit has a scale, as a count of ones (`12000` for 1.2万).
        let ones = chosen
            .iter()
            .filter(|c| self.bare_has_ones_reading(c))
            .map(|c| (c.value.shift(-self.unit.scale), *c));
        let hit = readings
            .iter()
            .find(|(v, c)| self.within(v) || self.rounded_ok(v, c))
            .copied()
            .or_else(|| ones.into_iter().find(|(v, _)| self.within(v)));
        let (pass, (value, cand)) = match hit {
            Some(r) => (true, r),
            None => (false, readings[0]),
        };
        let read = self.reading(cand, &value);
        let found = if pass {
            read
        } else if self.pick == Pick::Any && readings.len() > 1 {
            let all: Vec<String> = readings
                .iter()
                .take(5)
                .map(|(v, c)| self.reading(c, v))
                .collect();
            format!("{} ≠ {}", all.join("; "), self.expected)
        } else {
            format!("{read} ≠ {}", self.expected)
        };
        Grade::binary(pass, self.expected.clone(), found).with_extracted(format!(
            "{}{}",
            value.display(),
            self.unit_text
        ))
    }

    fn bare_has_ones_reading(&self, c: &Cand) -> bool {
        c.scale.is_none()
            && c.base.is_none()
            && self.unit.scale != 0
            && self.unit.base != Base::Percent
    }

    fn unit_label(&self) -> &str {
        if self.unit_text.is_empty() {
            "plain numbers"
        } else {
            &self.unit_text
        }
    }

    fn compatible(&self, c: &Cand) -> bool {
        match (&c.base, &self.unit.base) {
            (None, _) => true,
            (Some(Base::Percent), Base::Percent) => true,
            (Some(Base::Percent), _) | (_, Base::Percent) => false,
            (Some(_), Base::None) => true,
            (Some(a), b) => a == b,
        }
    }

    /// The candidate's scale (power of ten of its unit).
    fn scale_of(&self, c: &Cand) -> i32 {
        match (c.scale, &c.base) {
            (Some(s), _) => s,
            (None, Some(_)) => 0,
            (None, None) => self.unit.scale,
        }
    }

    /// The candidate's value in the gold's unit.
    fn convert(&self, c: &Cand) -> Dec {
        let v = c.value.shift(self.scale_of(c) - self.unit.scale);
        // "下降3.17%" states −3.17%
        if c.decrease && v.m > 0 && self.gold.m < 0 {
            v.neg()
        } else {
            v
        }
    }

    /// A rounded answer (`581.6亿`, `1.49万`) equals the gold rounded to the digits shown,
    /// when it shows at least three significant digits.
    fn rounded_ok(&self, v: &Dec, c: &Cand) -> bool {
        let Some((last, sig)) = c.shown else {
            return false;
        };
        if !self.rounded || sig < 3 {
            return false;
        }
        let exp = last + self.scale_of(c) - self.unit.scale;
        let half = 0.5 * 10f64.powi(exp);
        (v.to_f64() - self.gold.to_f64()).abs() <= half * (1.0 + 1e-9)
    }

    fn within(&self, v: &Dec) -> bool {
        if v.eq_value(&self.gold) {
            return true;
        }
        let g = self.gold.to_f64();
        let f = v.to_f64();
        let allowed = (self.rel * g.abs()).max(self.abs);
        allowed > 0.0 && (f - g).abs() <= allowed * (1.0 + 1e-9)
    }

    fn reading(&self, c: &Cand, v: &Dec) -> String {
        let converted = format!("{}{}", v.display(), self.unit_text);
        if c.scale.is_none() && c.base.is_none() {
            if self.unit_text.is_empty() {
                c.text.clone()
            } else {
                format!("{} read as {converted}", c.text)
            }
        } else if c.text == converted {
            converted
        } else {
            format!("{} = {converted}", c.text)
        }
    }
}

impl Grader for NumberGrader {
    fn grade(&self, sample: &Sample<'_>) -> Grade {
        self.grade_answer(sample.answer)
    }
}

fn tolerance_text(rel: f64, abs: f64, unit: &str) -> String {
    let pct = |r: f64| {
        let s = format!("{:.6}", r * 100.0);
        let s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
        format!("{s}%")
    };
    match (rel > 0.0, abs > 0.0) {
        (false, false) => String::new(),
        (true, false) => format!(" ±{}", pct(rel)),
        (false, true) => format!(" ±{abs}{unit}"),
        (true, true) => format!(" ±max({}, {abs}{unit})", pct(rel)),
    }
}

// ---------------------------------------------------------------------------------------
// Exact decimals

/// `m × 10^e`, exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dec {
    pub(crate) m: i128,
    pub(crate) e: i32,
}

impl Dec {
    fn norm(mut self) -> Dec {
        if self.m == 0 {
            return Dec { m: 0, e: 0 };
        }
        while self.m % 10 == 0 {
            self.m /= 10;
            self.e += 1;
        }
        self
    }

    fn shift(self, k: i32) -> Dec {
        Dec {
            m: self.m,
            e: self.e.saturating_add(k),
        }
        .norm()
    }

    fn neg(self) -> Dec {
        Dec {
            m: -self.m,
            e: self.e,
        }
    }

    fn eq_value(&self, o: &Dec) -> bool {
        self.norm() == o.norm()
    }

    pub(crate) fn to_f64(self) -> f64 {
        self.m as f64 * 10f64.powi(self.e)
    }

    /// `58,159,881`, `0.25`, `-1,234.5`; scientific beyond 30 digits.
    pub(crate) fn display(&self) -> String {
        let d = self.norm();
        let neg = d.m < 0;
        let digits = d.m.unsigned_abs().to_string();
        let n = digits.len() as i64;
        let e = d.e as i64;
        if e > 30 || e + n < -30 {
            let mut s = String::new();
            if neg {
                s.push('-');
            }
            s.push_str(&digits[..1]);
            if n > 1 {
                s.push('.');
                s.push_str(&digits[1..]);
            }
            let _ = write!(s, "e{}", e + n - 1);
            return s;
        }
        let (int, frac) = if e >= 0 {
            (format!("{digits}{}", "0".repeat(e as usize)), String::new())
        } else if -e >= n {
            (
                "0".to_owned(),
                format!("{}{digits}", "0".repeat((-e - n) as usize)),
            )
        } else {
            let cut = (n + e) as usize;
            (digits[..cut].to_owned(), digits[cut..].to_owned())
        };
        let mut out = String::new();
        if neg {
            out.push('-');
        }
        let len = int.len();
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (len - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        if !frac.is_empty() {
            out.push('.');
            out.push_str(&frac);
        }
        out
    }
}

/// A plain number: optional sign, digits with optional `,` grouping, decimals, exponent.
pub(crate) fn parse_plain(s: &str) -> Option<Dec> {
    let s = normalize(s);
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let mant: String = mant.chars().filter(|&c| c != ',' && c != '_').collect();
    let (int, frac) = mant.split_once('.').unwrap_or((&mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
        || int.len() + frac.len() > MAX_DIGITS
    {
        return None;
    }
    let m: i128 = format!("{int}{frac}").parse().ok()?;
    let d = Dec {
        m,
        e: exp.checked_sub(frac.len() as i32)?,
    }
    .norm();
    Some(if neg { d.neg() } else { d })
}

// ---------------------------------------------------------------------------------------
// Units

#[derive(Clone, Debug, PartialEq, Eq)]
enum Base {
    None,
    Percent,
    Currency(&'static str),
    Other(String),
}

#[derive(Clone, Debug)]
struct Unit {
    /// Power of ten (千 = 3, 亿 = 8, million = 6).
    scale: i32,
    base: Base,
}

/// Scale words, longest first within each script. English words need a word boundary.
const CN_SCALES: &[(&str, i32)] = &[
    ("万亿", 12),
    ("千亿", 11),
    ("百亿", 10),
    ("十亿", 9),
    ("千万", 7),
    ("百万", 6),
    ("十万", 5),
    ("亿", 8),
    ("万", 4),
    ("千", 3),
    ("百", 2),
];
const EN_SCALES: &[(&str, i32)] = &[
    ("trillion", 12),
    ("billion", 9),
    ("million", 6),
    ("thousand", 3),
    ("bn", 9),
    ("mn", 6),
    ("tn", 12),
    ("MM", 6),
    ("k", 3),
    ("K", 3),
    ("M", 6),
    ("B", 9),
    ("T", 12),
];
/// Currency words after a number (longest first).
const CURRENCY_SUFFIX: &[(&str, &str)] = &[
    ("元人民币", "CNY"),
    ("人民币元", "CNY"),
    ("人民币", "CNY"),
    ("美元", "USD"),
    ("美金", "USD"),
    ("港元", "HKD"),
    ("港币", "HKD"),
    ("欧元", "EUR"),
    ("元", "CNY"),
    ("块", "CNY"),
    ("yuan", "CNY"),
    ("RMB", "CNY"),
    ("CNY", "CNY"),
    ("USD", "USD"),
    ("dollars", "USD"),
    ("dollar", "USD"),
    ("HKD", "HKD"),
    ("EUR", "EUR"),
    ("euros", "EUR"),
];
/// Currency words before a number.
const CURRENCY_PREFIX: &[(&str, &str)] = &[
    ("人民币", "CNY"),
    ("RMB", "CNY"),
    ("CNY", "CNY"),
    ("¥", "CNY"),
    ("US$", "USD"),
    ("USD", "USD"),
    ("HK$", "HKD"),
    ("HKD", "HKD"),
    ("$", "USD"),
    ("€", "EUR"),
    ("EUR", "EUR"),
];

impl Unit {
    fn parse(s: &str) -> Option<Unit> {
        let t = normalize(s);
        let c: Vec<char> = t.trim().chars().collect();
        let mut i = 0;
        let mut scale = 0;
        if let Some((n, sc)) = match_scale(&c, 0) {
            i = n;
            scale = sc;
        }
        while i < c.len() && c[i] == ' ' {
            i += 1;
        }
        let rest: String = c[i..].iter().collect();
        let base = if rest.is_empty() {
            Base::None
        } else if rest == "%" || rest.eq_ignore_ascii_case("percent") {
            if scale != 0 {
                return None;
            }
            Base::Percent
        } else if let Some(&(_, code)) = CURRENCY_SUFFIX
            .iter()
            .chain(CURRENCY_PREFIX)
            .find(|(w, _)| *w == rest)
        {
            Base::Currency(code)
        } else if rest
            .chars()
            .any(|ch| ch.is_ascii_digit() || ch.is_whitespace())
        {
            return None;
        } else {
            Base::Other(rest)
        };
        Some(Unit { scale, base })
    }
}

pub(crate) fn starts_with(c: &[char], i: usize, w: &str) -> bool {
    (i..).zip(w.chars()).all(|(k, wc)| c.get(k) == Some(&wc))
}

fn starts_with_ci(c: &[char], i: usize, w: &str) -> bool {
    (i..)
        .zip(w.chars())
        .all(|(k, wc)| c.get(k).is_some_and(|ch| ch.eq_ignore_ascii_case(&wc)))
}

fn is_word(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_'
}

/// A scale word at `i`: (end, power of ten).
fn match_scale(c: &[char], i: usize) -> Option<(usize, i32)> {
    for &(w, p) in CN_SCALES {
        if starts_with(c, i, w) {
            return Some((i + w.chars().count(), p));
        }
    }
    for &(w, p) in EN_SCALES {
        let long = w.len() > 2;
        let hit = if long {
            starts_with_ci(c, i, w)
        } else {
            starts_with(c, i, w)
        };
        let end = i + w.len();
        if hit && c.get(end).is_none_or(|&ch| !ch.is_ascii_alphabetic()) {
            return Some((end, p));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Normalization

/// Folds full-width forms, Unicode minus signs and spaces, and strips markdown emphasis and
/// the LaTeX that wraps numbers, so the scanner sees plain text. Long input is cut to its
/// first and last [`MAX_CHARS`]/2 characters.
/// Cuts input to [`MAX_CHARS`] (first and last halves) and folds full-width forms, Unicode
/// minus signs and spaces to ASCII. `$` is dropped where it delimits LaTeX math.
pub(crate) fn fold(s: &str) -> String {
    let count = s.chars().count();
    let s: String = if count > MAX_CHARS {
        let head: String = s.chars().take(MAX_CHARS / 2).collect();
        let tail: String = s.chars().skip(count - MAX_CHARS / 2).collect();
        format!("{head}\n{tail}")
    } else {
        s.to_owned()
    };
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &ch) in chars.iter().enumerate() {
        if ch == '$' && !dollar_is_currency(&chars, i) {
            continue;
        }
        let mapped = match ch {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
            '\u{3000}' | '\u{A0}' | '\u{2009}' | '\u{202F}' | '\u{2002}' | '\u{2003}' => ' ',
            '\u{2212}' | '\u{2012}' | '\u{FE63}' | '\u{2013}' => '-',
            '\u{FFE5}' => '¥',
            // traditional forms of the characters numbers and units use
            '億' => '亿',
            '萬' => '万',
            '幣' => '币',
            '兩' => '两',
            '貳' => '贰',
            '陸' => '陆',
            '\u{00D7}' | '\u{2715}' | '\u{2716}' => '×',
            _ => ch,
        };
        out.push(mapped);
    }
    out
}

pub(crate) fn normalize(s: &str) -> String {
    let mut out = fold(s);
    const REPLACE: &[(&str, &str)] = &[
        ("\\left", ""),
        ("\\(", " "),
        ("\\)", " "),
        ("\\[", " "),
        ("\\]", " "),
        ("\\right", ""),
        ("{,}", ","),
        ("\\,", ""),
        ("\\!", ""),
        ("\\;", " "),
        ("\\quad", " "),
        ("\\ ", " "),
        ("\\%", "%"),
        ("\\$", "$"),
        ("\\yen", "¥"),
        ("\\times", "×"),
        ("\\cdot", "×"),
        ("\\text{", "{"),
        ("\\textbf{", "{"),
        ("\\mathrm{", "{"),
        ("\\mathbf{", "{"),
        ("\\boxed{", "{"),
        ("**", ""),
        ("`", ""),
    ];
    for (from, to) in REPLACE {
        if out.contains(from) {
            out = out.replace(from, to);
        }
    }
    // LaTeX groups: `58,159,881\text{元}` must read its unit, `10^{10}` its exponent
    out.retain(|ch| ch != '{' && ch != '}');
    out
}

/// `$` before a number is a dollar sign unless it opens LaTeX math closed right after the
/// number (`$5$`, `$58{,}159{,}881$`). Other `$` are LaTeX delimiters.
fn dollar_is_currency(c: &[char], i: usize) -> bool {
    if i > 0 && c[i - 1] == '$' {
        return false;
    }
    let mut k = i + 1;
    if !c.get(k).is_some_and(char::is_ascii_digit) {
        return false;
    }
    while k < c.len() && (c[k].is_ascii_digit() || matches!(c[k], ',' | '.' | '{' | '}')) {
        k += 1;
    }
    c.get(k) != Some(&'$')
}

// ---------------------------------------------------------------------------------------
// Scanning

/// A number found in the answer.
#[derive(Clone, Debug)]
struct Cand {
    /// As written (after normalization), unit included.
    text: String,
    value: Dec,
    /// An explicit scale word (亿, million); `None` when there was none.
    scale: Option<i32>,
    /// An explicit currency or percent sign; `None` for a bare number.
    base: Option<Base>,
    /// A year (`2024` with no unit) or an operand of a calculation (`A − B = C`): picked
    /// only when nothing else is there.
    minor: bool,
    /// (power of ten of the last digit shown, significant digits shown), for rounded answers.
    shown: Option<(i32, usize)>,
    /// Preceded by a word saying the amount went down (`下降`, `decreased by`).
    decrease: bool,
}

/// Measure words and units: a number followed by one counts something of that kind.
const MEASURE_WORDS: &[&str] = &[
    "平方千米",
    "平方公里",
    "平方米",
    "千克",
    "公斤",
    "千米",
    "公里",
    "小时",
    "分钟",
    "台",
    "个",
    "件",
    "人",
    "名",
    "位",
    "次",
    "天",
    "岁",
    "米",
    "吨",
    "克",
    "斤",
    "辆",
    "套",
    "家",
    "户",
    "只",
    "本",
    "张",
    "条",
    "股",
    "份",
    "倍",
    "项",
    "座",
    "所",
    "亩",
    "升",
    "箱",
    "瓶",
    "秒",
    "篇",
    "款",
    "部",
    "架",
    "艘",
    "头",
];

const DATE_SUFFIX: &[&str] = &["年", "月", "日", "号", "季度", "财年", "周", "时"];

fn cn_digit(ch: char) -> Option<i128> {
    Some(match ch {
        '零' | '〇' => 0,
        '一' | '壹' => 1,
        '二' | '两' | '贰' => 2,
        '三' | '叁' => 3,
        '四' | '肆' => 4,
        '五' | '伍' => 5,
        '六' | '陆' => 6,
        '七' | '柒' => 7,
        '八' | '捌' => 8,
        '九' | '玖' => 9,
        _ => return None,
    })
}

fn cn_small(ch: char) -> Option<i128> {
    Some(match ch {
        '十' | '拾' => 10,
        '百' | '佰' => 100,
        '千' | '仟' => 1000,
        _ => return None,
    })
}

fn is_cn_numeral(ch: char) -> bool {
    cn_digit(ch).is_some() || cn_small(ch).is_some() || ch == '万' || ch == '亿'
}

fn scan(text: &str, gold: &Unit) -> Vec<Cand> {
    let c: Vec<char> = text.chars().collect();
    // words before/after a position, counted once so a Chinese numeral can ask in O(1)
    // whether it is the whole answer
    let mut words = Vec::with_capacity(c.len() + 1);
    words.push(0u32);
    for &ch in &c {
        let w = ch.is_alphanumeric() && !matches!(ch, '约' | '为' | '是');
        words.push(words.last().copied().unwrap_or(0) + u32::from(w));
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let starts_number = ch.is_ascii_digit()
            || (ch == '.'
                && c.get(i + 1).is_some_and(char::is_ascii_digit)
                && (i == 0 || !c[i - 1].is_ascii_digit()));
        if starts_number {
            let (end, cand) = arabic(&c, i, gold);
            out.extend(cand);
            i = end.max(i + 1);
        } else if is_cn_numeral(ch) {
            let (end, cand) = chinese(&c, i, gold, &words);
            out.extend(cand);
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Digits from `i`: (end, digit string).
fn digits(c: &[char], mut i: usize) -> (usize, String) {
    let mut s = String::new();
    while i < c.len() && c[i].is_ascii_digit() {
        s.push(c[i]);
        i += 1;
    }
    (i, s)
}

/// Integer part with `,` grouping (3-digit, or Chinese 4-digit). Returns (end, digits).
fn grouped_int(c: &[char], i: usize) -> (usize, String) {
    let (mut end, first) = digits(c, i);
    let mut groups: Vec<(usize, String)> = Vec::new();
    let mut k = end;
    // only groups of one width (3, or 4 for Chinese grouping) continue a number; stopping at
    // the first other group keeps "1,2,3,…" linear
    while k + 1 < c.len() && c[k] == ',' && c[k + 1].is_ascii_digit() {
        let (e, g) = digits(c, k + 1);
        let width = groups
            .first()
            .map_or(g.len(), |(_, f): &(usize, String)| f.len());
        if !(3..=4).contains(&g.len()) || g.len() != width || groups.len() >= MAX_DIGITS {
            break;
        }
        groups.push((e, g));
        k = e;
    }
    if groups.is_empty() {
        return space_grouped(c, end, first);
    }
    for width in [3usize, 4] {
        if first.len() <= width && groups.iter().all(|(_, g)| g.len() == width) {
            let mut s = first.clone();
            for (e, g) in &groups {
                s.push_str(g);
                end = *e;
            }
            return (end, s);
        }
    }
    // Not a grouping: a list ("1,2,3") — the number ends at the first comma.
    (end, first)
}

/// SI-style grouping with spaces (`58 159 881`, `12 000`; thin and no-break spaces are
/// folded to spaces): 3-digit groups after a first group of 1–3 digits, each after exactly
/// one space, so "2024 123" or "1 2 3" stay separate numbers.
fn space_grouped(c: &[char], end: usize, first: String) -> (usize, String) {
    if first.is_empty() || first.len() > 3 {
        return (end, first);
    }
    let mut k = end;
    let mut s = first.clone();
    let mut n = 0;
    while k + 1 < c.len() && c[k] == ' ' && c[k + 1].is_ascii_digit() {
        let (e, g) = digits(c, k + 1);
        if g.len() != 3 {
            break;
        }
        s.push_str(&g);
        k = e;
        n += 1;
    }
    let stops_cleanly = !(k + 1 < c.len() && c[k] == ' ' && c[k + 1].is_ascii_digit());
    if n >= 1 && stops_cleanly && s.len() <= MAX_DIGITS {
        (k, s)
    } else {
        (end, first)
    }
}

fn skip_spaces(c: &[char], mut i: usize, max: usize) -> usize {
    let start = i;
    while i < c.len() && c[i] == ' ' && i - start < max {
        i += 1;
    }
    i
}

/// The suffix after a number's digits: percent, scale, currency or the gold's own unit word.
/// Returns (end, scale, base).
fn suffix(c: &[char], i: usize, gold: &Unit) -> (usize, Option<i32>, Option<Base>) {
    let j = skip_spaces(c, i, 1);
    if j < c.len() && c[j] == '%' {
        return (j + 1, None, Some(Base::Percent));
    }
    if starts_with_ci(c, j, "percent") {
        return (j + 7, None, Some(Base::Percent));
    }
    if starts_with(c, j, "个百分点") {
        return (j + 4, None, Some(Base::Percent));
    }
    let mut end = i;
    let mut scale = None;
    if let Some((e, s)) = match_scale(c, j) {
        // `5 k` is a scale only without a space for single letters
        let single = e - j == 1 && c[j].is_ascii_alphabetic();
        if !(single && j != i) {
            scale = Some(s);
            end = e;
        }
    }
    let k = skip_spaces(c, end, 1);
    for &(w, code) in CURRENCY_SUFFIX {
        if starts_with(c, k, w) {
            let e = k + w.chars().count();
            let ascii = w.is_ascii();
            if !ascii || c.get(e).is_none_or(|&ch| !ch.is_ascii_alphabetic()) {
                return (e, scale, Some(Base::Currency(code)));
            }
        }
    }
    if let Base::Other(word) = &gold.base
        && starts_with(c, k, word)
    {
        return (k + word.chars().count(), scale, Some(gold.base.clone()));
    }
    // a count of something else (`3,530台` when the gold is a percentage)
    for w in MEASURE_WORDS {
        if starts_with(c, k, w) {
            return (
                k + w.chars().count(),
                scale,
                Some(Base::Other((*w).to_owned())),
            );
        }
    }
    (end, scale, None)
}

/// Looks back from `start` for a currency word, a sign, an opening parenthesis and `百分之`.
struct Prefix {
    start: usize,
    currency: Option<&'static str>,
    negative: bool,
    paren: bool,
    percent: bool,
    blocked: bool,
}

fn prefix(c: &[char], start: usize) -> Prefix {
    let mut p = Prefix {
        start,
        currency: None,
        negative: false,
        paren: false,
        percent: false,
        blocked: false,
    };
    let mut i = start;
    // a sign directly before the digits: "-5", "¥-5"
    if i > 0 && c[i - 1] == '-' && (i < 2 || !is_word(c[i - 2])) {
        p.negative = true;
        i -= 1;
    }
    let mut k = i;
    while k > 0 && c[k - 1] == ' ' && i - k < 1 {
        k -= 1;
    }
    for &(w, code) in CURRENCY_PREFIX {
        let n = w.chars().count();
        if k >= n && starts_with(c, k - n, w) {
            let before = k - n;
            let ascii = w.chars().all(|ch| ch.is_ascii_alphabetic());
            if ascii && before > 0 && c[before - 1].is_ascii_alphabetic() {
                continue;
            }
            p.currency = Some(code);
            i = before;
            break;
        }
    }
    if !p.negative
        && i > 0
        && c[i - 1] == '-'
        && (i < 2 || !is_word(c[i - 2]))
        && p.currency.is_some()
    {
        p.negative = true;
        i -= 1;
    }
    if i > 0 && c[i - 1] == '负' {
        p.negative = true;
        i -= 1;
    }
    if i > 0 && c[i - 1] == '(' {
        p.paren = true;
    }
    if i >= 3 && starts_with(c, i - 3, "百分之") {
        p.percent = true;
        i -= 3;
    }
    if p.currency.is_none()
        && i > 0
        && (is_word(c[i - 1]) || c[i - 1] == '.' || c[i - 1] == '^' || c[i - 1] == '_')
    {
        p.blocked = true;
    }
    if i > 0 && c[i - 1] == '第' {
        p.blocked = true;
    }
    p.start = i;
    p
}

/// An operand of a calculation: next to an arithmetic operator, or followed by `=`.
fn operand(c: &[char], start: usize, end: usize) -> bool {
    let next = skip_spaces(c, end, 2);
    let after = c.get(next).copied();
    if matches!(after, Some('+' | '-' | '*' | '/' | '×' | '÷' | '=' | '≈'))
        || ["乘以", "除以", "减去", "加上"]
            .iter()
            .any(|w| starts_with(c, next, w))
    {
        return true;
    }
    let mut k = start;
    while k > 0 && c[k - 1] == ' ' {
        k -= 1;
    }
    if k > 0 && matches!(c[k - 1], '+' | '-' | '*' | '/' | '×' | '÷') {
        return true;
    }
    ["乘以", "除以", "减去", "加上", "减", "除"]
        .iter()
        .any(|w| k >= w.chars().count() && starts_with(c, k - w.chars().count(), w))
}

const DECREASE: &[&str] = &[
    "下降",
    "减少",
    "降低",
    "下滑",
    "亏损",
    "下跌",
    "decrease",
    "decreased by",
    "declined by",
    "fell by",
    "dropped by",
    "down by",
    "loss of",
];

fn decrease_before(c: &[char], start: usize) -> bool {
    let from = start.saturating_sub(16);
    let before: String = c[from..start].iter().collect::<String>().to_lowercase();
    let before = before.trim_end_matches([' ', '了', '约', '为', '近', '超']);
    DECREASE.iter().any(|w| before.ends_with(w))
}

fn date_follows(c: &[char], i: usize, gold: &Unit) -> bool {
    DATE_SUFFIX
        .iter()
        .any(|w| starts_with(c, i, w) && gold.base != Base::Other((*w).to_owned()))
}

fn arabic(c: &[char], start: usize, gold: &Unit) -> (usize, Option<Cand>) {
    let (mut end, int) = if c[start] == '.' {
        (start, String::new())
    } else {
        grouped_int(c, start)
    };
    let plain_int = end == start + int.len();
    let mut frac = String::new();
    if end + 1 < c.len() && c[end] == '.' && c[end + 1].is_ascii_digit() {
        let (e, f) = digits(c, end + 1);
        frac = f;
        end = e;
    }
    if int.len() + frac.len() > MAX_DIGITS {
        // skip the whole run of digits and separators
        let mut e = end;
        while e < c.len() && (c[e].is_ascii_digit() || c[e] == ',' || c[e] == '.') {
            e += 1;
        }
        return (e, None);
    }
    let mut exp: i32 = 0;
    // 5.8e10 / 5.8E-3
    if end < c.len() && (c[end] == 'e' || c[end] == 'E') {
        let mut k = end + 1;
        let neg = k < c.len() && (c[k] == '-' || c[k] == '+');
        let sign_neg = neg && c[k] == '-';
        if neg {
            k += 1;
        }
        let (e, d) = digits(c, k);
        if !d.is_empty() && d.len() <= 3 && c.get(e).is_none_or(|ch| !ch.is_ascii_alphabetic()) {
            exp = d.parse::<i32>().unwrap_or(0) * if sign_neg { -1 } else { 1 };
            end = e;
        }
    }
    // 5.8×10^{10}, 5.8 x 10^10, 5.8*10^10
    {
        let k = skip_spaces(c, end, 1);
        if k < c.len() && matches!(c[k], '×' | 'x' | '*') {
            let k2 = skip_spaces(c, k + 1, 1);
            if starts_with(c, k2, "10^") {
                let mut q = k2 + 3;
                let brace = q < c.len() && c[q] == '{';
                if brace {
                    q += 1;
                }
                let sign_neg = q < c.len() && c[q] == '-';
                if q < c.len() && (c[q] == '-' || c[q] == '+') {
                    q += 1;
                }
                let (e, d) = digits(c, q);
                let close_ok = !brace || c.get(e) == Some(&'}');
                if !d.is_empty() && d.len() <= 3 && close_ok {
                    exp += d.parse::<i32>().unwrap_or(0) * if sign_neg { -1 } else { 1 };
                    end = if brace { e + 1 } else { e };
                }
            }
        }
    }
    let m: i128 = match format!("{int}{frac}").parse() {
        Ok(m) => m,
        Err(_) => return (end, None),
    };
    let mut value = Dec {
        m,
        e: exp - frac.len() as i32,
    }
    .norm();
    let digits_end = end;
    let (mut uend, scale, mut base) = suffix(c, end, gold);
    let mut mixed = false;
    // Chinese mixed grouping: 5亿8159万9881, 581亿6000万; the value stays in units of the
    // first scale word
    if let Some(s) = scale
        && (s == 8 || s == 12)
        && frac.is_empty()
        && exp == 0
        && base.is_none()
    {
        let mut cur = s;
        let mut total = value.shift(s);
        let mut k = uend;
        while k < c.len() && c[k].is_ascii_digit() {
            let (e, d) = digits(c, k);
            if d.len() > 4 {
                break;
            }
            let (e2, s2, b2) = suffix(c, e, gold);
            let Ok(v) = d.parse::<i128>() else { break };
            let part = match s2 {
                Some(s2) if s2 < cur && (s2 == 4 || s2 == 8) => s2,
                None if b2.is_some() && cur == 4 => 0,
                _ => break,
            };
            total = add_dec(total, Dec { m: v, e: part });
            uend = e2;
            k = e2;
            cur = part;
            if b2.is_some() {
                base = b2;
                break;
            }
        }
        value = total.shift(-s);
        mixed = true;
    }
    let pre = prefix(c, start);
    let mut negative = pre.negative;
    if pre.paren && c.get(uend) == Some(&')') {
        negative = true;
        uend += 1;
    }
    if negative {
        value = value.neg();
    }
    if pre.percent {
        base = Some(Base::Percent);
    }
    if base.is_none()
        && let Some(code) = pre.currency
    {
        base = Some(Base::Currency(code));
    }
    let text: String = c[pre.start..uend]
        .iter()
        .collect::<String>()
        .trim()
        .to_owned();
    // not amounts: identifiers, ordinals, dates, list markers
    if pre.blocked
        || (scale.is_none()
            && base.is_none()
            && date_follows(c, skip_spaces(c, digits_end, 1), gold))
    {
        return (uend.max(digits_end), None);
    }
    let line_start = {
        let mut k = pre.start;
        while k > 0 && c[k - 1] == ' ' {
            k -= 1;
        }
        k == 0 || c[k - 1] == '\n'
    };
    if line_start && frac.is_empty() && int.len() <= 2 && scale.is_none() && base.is_none() {
        let next = c.get(digits_end).copied();
        let after = c.get(digits_end + 1).copied();
        if matches!(next, Some('.') | Some(')') | Some('、'))
            && after.is_none_or(|a| a == ' ' || !a.is_ascii_digit())
        {
            return (digits_end + 1, None);
        }
    }
    let year_like = scale.is_none()
        && base.is_none()
        && plain_int
        && frac.is_empty()
        && exp == 0
        && int.len() == 4
        && (1900..=2100).contains(&int.parse::<i32>().unwrap_or(0));
    let minor = year_like || operand(c, pre.start, uend);
    let sig = format!("{int}{frac}").trim_start_matches('0').len();
    let shown = (!mixed).then_some((exp - frac.len() as i32, sig));
    let decrease = decrease_before(c, pre.start);
    (
        uend,
        Some(Cand {
            text,
            value,
            scale,
            base,
            minor,
            shown,
            decrease,
        }),
    )
}

fn add_dec(a: Dec, b: Dec) -> Dec {
    let e = a.e.min(b.e);
    let scale = |d: Dec| -> Option<i128> { d.m.checked_mul(10i128.checked_pow((d.e - e) as u32)?) };
    match (scale(a), scale(b)) {
        (Some(x), Some(y)) => Dec {
            m: x.saturating_add(y),
            e,
        }
        .norm(),
        _ => a,
    }
}

/// Parses a Chinese numeral at `start`: (end, value). `点` introduces decimals.
pub(crate) fn parse_cn(c: &[char], start: usize) -> Option<(usize, Dec, usize)> {
    let mut i = start;
    let mut total: i128 = 0; // 亿 level and above, already multiplied
    let mut wan: i128 = 0; // 万 level, multiplied
    let mut section: i128 = 0; // below 万
    let mut num: i128 = 0;
    let mut count = 0;
    let mut has_digit = false;
    let mut has_digit_char = false;
    while i < c.len() && count < 40 {
        let ch = c[i];
        if let Some(d) = cn_digit(ch) {
            has_digit_char = true;
            // 二〇二四: digits in a row are positional
            num = if i > start && cn_digit(c[i - 1]).is_some() {
                num.checked_mul(10)?.checked_add(d)?
            } else {
                d
            };
            has_digit = true;
        } else if let Some(u) = cn_small(ch) {
            let n = if num == 0 && !has_digit { 1 } else { num };
            section = section.checked_add(n.checked_mul(u)?)?;
            num = 0;
            has_digit = true;
        } else if ch == '万' {
            if count == 0 {
                return None;
            }
            wan = wan.checked_add((section + num).checked_mul(10_000)?)?;
            section = 0;
            num = 0;
        } else if ch == '亿' {
            if count == 0 {
                return None;
            }
            total = total
                .checked_add(wan)?
                .checked_add(section + num)?
                .checked_mul(100_000_000)?;
            wan = 0;
            section = 0;
            num = 0;
        } else {
            break;
        }
        i += 1;
        count += 1;
    }
    // a numeral has a digit (千元 and 百万 alone are units); only 十 may lead without one (十二)
    if count == 0 || !(has_digit_char || c[start] == '十' || c[start] == '拾') {
        return None;
    }
    let int = total
        .checked_add(wan)?
        .checked_add(section)?
        .checked_add(num)?;
    let mut value = Dec { m: int, e: 0 };
    if i + 1 < c.len() && c[i] == '点' && cn_digit(c[i + 1]).is_some() {
        let mut k = i + 1;
        let mut frac = String::new();
        while k < c.len() && frac.len() < 20 {
            match cn_digit(c[k]) {
                Some(d) => frac.push(char::from(b'0' + d as u8)),
                None => break,
            }
            k += 1;
        }
        // the decimal point only makes sense after a plain integer ("五点八", "十二点五")
        let m: i128 = format!("{int}{frac}").parse().ok()?;
        value = Dec {
            m,
            e: -(frac.len() as i32),
        };
        count += k - i;
        i = k;
        // 五点八亿: a trailing big unit scales the decimal
        if i < c.len() && (c[i] == '亿' || c[i] == '万') {
            let s = if starts_with(c, i, "万亿") {
                12
            } else if c[i] == '亿' {
                8
            } else {
                4
            };
            value = value.shift(s);
            i += if s == 12 { 2 } else { 1 };
        }
    }
    Some((i, value.norm(), count))
}

fn chinese(c: &[char], start: usize, gold: &Unit, words: &[u32]) -> (usize, Option<Cand>) {
    // 百分之 is a prefix, not the number 100
    if starts_with(c, start, "百分之") || starts_with(c, start, "千分之") {
        return (start + 3, None);
    }
    let Some((end, mut value, count)) = parse_cn(c, start) else {
        return (start + 1, None);
    };
    // fractions (三分之一) are the math grader's business; don't read their parts as amounts
    if starts_with(c, end, "分之") {
        let mut k = end + 2;
        while k < c.len() && is_cn_numeral(c[k]) {
            k += 1;
        }
        return (k, None);
    }
    let (uend, scale, mut base) = suffix(c, end, gold);
    let pre = prefix(c, start);
    if pre.percent {
        base = Some(Base::Percent);
    }
    let whole = words[pre.start] == 0 && words[c.len()] == words[uend];
    let has_multiplier = c[start..end]
        .iter()
        .any(|&ch| cn_small(ch).is_some() || ch == '万' || ch == '亿');
    let accepted = base.is_some()
        || scale.is_some()
        || pre.negative
        || whole
        || (count >= 3 && has_multiplier);
    if !accepted
        || pre.start > 0 && c[pre.start - 1] == '第'
        || (base.is_none() && date_follows(c, uend, gold))
    {
        return (end, None);
    }
    if let Some(s) = scale {
        value = value.shift(s);
    }
    if pre.negative {
        value = value.neg();
    }
    if base.is_none()
        && let Some(code) = pre.currency
    {
        base = Some(Base::Currency(code));
    }
    let text: String = c[pre.start..uend]
        .iter()
        .collect::<String>()
        .trim()
        .to_owned();
    // a numeral with 万/亿 carries its own scale (五百八十一亿 = 58,100,000,000 in ones); a
    // small one without a unit is bare and read in the gold's unit
    let big = c[start..end].iter().any(|&ch| ch == '万' || ch == '亿');
    let scale = if scale.is_some() || big {
        Some(0)
    } else {
        None
    };
    let n = value.norm();
    let shown = Some((
        n.e - scale.unwrap_or(0),
        n.m.unsigned_abs().to_string().len(),
    ));
    let decrease = decrease_before(c, pre.start);
    (
        uend,
        Some(Cand {
            text,
            value,
            scale,
            base,
            minor: operand(c, pre.start, uend),
            shown,
            decrease,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grader(v: Value) -> NumberGrader {
        NumberGrader::from_params(v.as_object().unwrap()).unwrap()
    }

    fn jd() -> NumberGrader {
        grader(serde_json::json!({"value": 58159881, "unit": "千元"}))
    }

    #[track_caller]
    fn pass(g: &NumberGrader, answer: &str) {
        let r = g.grade_answer(answer);
        assert!(r.pass, "{answer:?} should pass: {}", r.found);
    }

    #[track_caller]
    fn fail(g: &NumberGrader, answer: &str) -> String {
        let r = g.grade_answer(answer);
        assert!(!r.pass, "{answer:?} should fail: {}", r.found);
        r.found
    }

    #[test]
    fn seed_right_answers() {
        let g = jd();
        for a in [
            "58,159,881千元",
            "581.6亿元",
            "58,159.88百万元",
            "RMB 58.16 billion",
            "５８，１５９，８８１",
            "五百八十一亿六千万元",
            "京东健康2024年收入为58,159,881千元，较2023年的53,529,941千元增长8.6%。",
            "2024年京东健康实现收入人民币581.6亿元",
            "**58,159,881** 千元",
            "$58{,}159{,}881$ 千元",
            "收入为 \\(58,159,881\\) 千元",
            "约581.6亿",
            "58159881",
            "In 2024, JD Health's revenue was RMB58.16 billion.",
            "5815,9881千元",
            "581亿5988万元",
            "5.815988e10元",
            "5.816 × 10^{10} 元",
            "58,159,881\\text{千元}",
            "RMB58,159.9 million",
            "¥58.16bn",
        ] {
            pass(&g, a);
        }
    }

    #[test]
    fn seed_wrong_answers_and_messages() {
        let g = jd();
        assert_eq!(
            fail(&g, "535.3亿元"),
            "535.3亿元 = 53,530,000千元 ≠ 58,159,881千元 ±0.1%"
        );
        assert_eq!(
            fail(&g, "48,795,702千元"),
            "48,795,702千元 ≠ 58,159,881千元 ±0.1%"
        );
        assert_eq!(
            fail(&g, "58,159,881元"),
            "58,159,881元 = 58,159.881千元 ≠ 58,159,881千元 ±0.1%"
        );
        assert_eq!(
            fail(&g, "53,529,941"),
            "53,529,941 read as 53,529,941千元 ≠ 58,159,881千元 ±0.1%"
        );
        assert!(fail(&g, "收入增长了8.6%").contains("not an amount in 千元"));
        assert!(fail(&g, "我不知道").starts_with("no number in"));
        fail(&g, "五百三十五亿元");
        fail(&g, "约5816亿");
        fail(&g, "$58.16 billion");
        fail(&g, "58,159,881\\text{元}");
        // listed as right in the issue, but 5,815.99百万元 is 5.8 billion yuan: off by 10
        assert_eq!(
            fail(&g, "5,815.99百万元"),
            "5,815.99百万元 = 5,815,990千元 ≠ 58,159,881千元 ±0.1%"
        );
        let r = g.grade_answer("581.6亿元");
        assert_eq!(r.found, "581.6亿元 = 58,160,000千元");
        assert_eq!(r.expected, "58,159,881千元 ±0.1%");
        assert_eq!(r.extracted.as_deref(), Some("58,160,000千元"));
    }

    #[test]
    fn pick_modes() {
        let first = jd();
        let last =
            grader(serde_json::json!({"value": "58,159,881", "unit": "千元", "pick": "last"}));
        let any = grader(serde_json::json!({"value": "58159881", "unit": "千元", "pick": "any"}));
        let a = "2023年为53,529,941千元，2024年为58,159,881千元";
        fail(&first, a);
        pass(&last, a);
        pass(&any, a);
        let b = "58,159,881千元（2023年：53,529,941千元）";
        pass(&first, b);
        fail(&last, b);
        fail(&any, "48,795,702千元 or 53,529,941千元");
    }

    #[test]
    fn tolerance_and_exactness() {
        let exact = grader(serde_json::json!({"value": 142, "tolerance": {"abs": 0}}));
        pass(&exact, "142");
        pass(&exact, "The answer is 142.");
        fail(&exact, "142.1");
        let abs = grader(serde_json::json!({"value": 3.5, "tolerance": {"abs": 0.05}}));
        pass(&abs, "3.54");
        fail(&abs, "3.56");
        let g = jd();
        pass(&g, "582亿元"); // 0.07% off
        fail(&g, "583亿元"); // 0.24% off
        assert_eq!(abs.expected, "3.5 ±0.05");
    }

    #[test]
    fn formats() {
        let neg = grader(serde_json::json!({"value": -1234, "unit": "元"}));
        for a in [
            "-1,234元",
            "−1,234元",
            "(1,234)",
            "负1234元",
            "亏损额为-1234",
            "¥-1,234",
        ] {
            pass(&neg, a);
        }
        fail(&neg, "1,234元");
        let pct = grader(serde_json::json!({"value": 8.6, "unit": "%"}));
        for a in [
            "8.6%",
            "８.６％",
            "百分之八点六",
            "增长8.6 percent",
            "8.6个百分点",
            "百分之8.6",
            "8.6",
        ] {
            pass(&pct, a);
        }
        fail(&pct, "0.086");
        fail(&pct, "86%");
        let en = grader(serde_json::json!({"value": 2.5, "unit": "million"}));
        for a in [
            "2.5 million",
            "2,500 thousand",
            "2.5M",
            "$2.5mn",
            "2500k",
            "0.0025 billion",
        ] {
            pass(&en, a);
        }
        let people = grader(serde_json::json!({"value": 30000, "unit": "人"}));
        pass(&people, "共3万人");
        pass(&people, "三万人");
        fail(&people, "3000人");
        let wan = grader(serde_json::json!({"value": 123456789, "unit": "元"}));
        pass(&wan, "1亿2345万6789元");
        pass(&wan, "一亿二千三百四十五万六千七百八十九元");
        // a unit alone in a table header is not the number 1,000
        pass(&wan, "| 项目 | 千元 |\n|---|---|\n| 收入 | 123,456,789元 |");
        // SI grouping with spaces; separate numbers stay separate
        pass(&jd(), "58 159 881 千元");
        pass(&jd(), "58\u{202F}159\u{202F}881 thousand yuan");
        let plain = grader(serde_json::json!({"value": 12000}));
        pass(&plain, "12 000");
        fail(&plain, "12 0000"); // not a 3-digit group: the amount is 12
        let three = grader(serde_json::json!({"value": 100, "pick": "first"}));
        pass(&three, "100 2000");
        fail(&three, "100 200"); // one number in SI grouping
        // a bare count for a gold with a scaled unit: in the unit, or in ones
        let wan = grader(serde_json::json!({"value": 1.2, "unit": "万"}));
        pass(&wan, "1.2");
        pass(&wan, "12000");
        pass(&wan, "12,000");
        fail(&wan, "120");
        fail(&wan, "1.2千");
        let small = grader(serde_json::json!({"value": 0.25}));
        pass(&small, ".25");
        pass(&small, "2.5e-1");
    }

    #[test]
    fn not_amounts() {
        let g = grader(serde_json::json!({"value": 12, "unit": "元"}));
        pass(&g, "2024年第3季度，价格为12元");
        pass(&g, "Qwen2.5 says 12 yuan");
        pass(&g, "1. 价格：12元");
        pass(&g, "In 2024 it cost 12 yuan");
        fail(&g, "三分之一");
        let years = grader(serde_json::json!({"value": 2024}));
        pass(&years, "2024");
    }

    #[test]
    fn rounded_answers() {
        let g = grader(serde_json::json!({"value": 14884, "unit": "人/平方千米"}));
        pass(&g, "约1.49万人/平方千米"); // 0.1% off, but 14,884 rounds to 1.49万
        pass(&g, "1.488万人/平方千米");
        fail(&g, "约1.5万人/平方千米"); // two significant digits are not enough
        fail(&g, "1.47万人/平方千米");
        let pct = grader(serde_json::json!({"value": 28.61, "unit": "%", "tolerance": {"abs": 0}}));
        pass(&pct, "28.6%");
        fail(&pct, "28.5%");
        let strict = grader(
            serde_json::json!({"value": 28.61, "unit": "%", "tolerance": {"abs": 0}, "rounded": false}),
        );
        fail(&strict, "28.6%");
        pass(&strict, "28.61%");
    }

    #[test]
    fn calculations_counts_and_decreases() {
        let g = grader(serde_json::json!({"value": 871156.2, "unit": "万元"}));
        pass(&g, "境内收入 = 1,283,456.7 − 412,300.5 = 871,156.2万元");
        pass(&g, "1,283,456.7万元减去412,300.5万元，得871,156.2万元");
        let pct = grader(serde_json::json!({"value": 28.61, "unit": "%"}));
        pass(&pct, "增长了3,530台，即28.61%");
        pass(&pct, "(15,870-12,340)/12,340 ≈ 28.61%");
        let neg = grader(serde_json::json!({"value": -3.17, "unit": "%"}));
        pass(&neg, "欧洲收入同比下降3.17%。");
        pass(&neg, "revenue decreased by 3.17%");
        fail(&neg, "欧洲收入同比增长3.17%。");
        let people = grader(serde_json::json!({"value": 95.3, "unit": "万人"}));
        pass(&people, "953,000人");
        fail(&people, "95.3人");
    }

    #[test]
    fn bad_params() {
        let e = NumberGrader::from_params(serde_json::json!({"value": "abc"}).as_object().unwrap())
            .err()
            .unwrap();
        assert!(e.message.contains("must be a number"), "{}", e.message);
        let e = NumberGrader::from_params(
            serde_json::json!({"value": 1, "tolerence": {}})
                .as_object()
                .unwrap(),
        )
        .err()
        .unwrap();
        assert!(e.message.contains("unknown key"), "{}", e.message);
        let e = NumberGrader::from_params(
            serde_json::json!({"value": 1, "unit": "1 2"})
                .as_object()
                .unwrap(),
        )
        .err()
        .unwrap();
        assert!(e.message.contains("unknown unit"), "{}", e.message);
        let e = NumberGrader::from_params(
            serde_json::json!({"value": 1, "tolerance": {"rel": -1}})
                .as_object()
                .unwrap(),
        )
        .err()
        .unwrap();
        assert!(e.message.contains("non-negative"), "{}", e.message);
        let e = NumberGrader::from_params(
            serde_json::json!({"value": 1, "pick": "middle"})
                .as_object()
                .unwrap(),
        )
        .err()
        .unwrap();
        assert!(e.message.contains("middle"), "{}", e.message);
    }
}
