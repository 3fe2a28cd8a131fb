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

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use llmtest_spec::CheckError;

use crate::grader::{FnFactory, Grade, Grader, GraderContext, GraderFactory, Sample, parse_params};

mod chinese;
mod scan;
mod units;
mod value;

pub(crate) use chinese::parse_cn;
use chinese::*;
pub(crate) use scan::fold;
use scan::*;
pub(crate) use units::starts_with;
use units::*;
pub(crate) use value::Dec;
use value::*;

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

#[cfg(test)]
mod tests;
