//! The gold's unit: scale words (`万`, `million`, `k`), currencies, percentages, other words.

use super::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Base {
    None,
    Percent,
    Currency(&'static str),
    Other(String),
}

#[derive(Clone, Debug)]
pub(super) struct Unit {
    /// Power of ten (千 = 3, 亿 = 8, million = 6).
    pub(super) scale: i32,
    pub(super) base: Base,
}

/// Scale words, longest first within each script. English words need a word boundary.
pub(super) const CN_SCALES: &[(&str, i32)] = &[
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
pub(super) const EN_SCALES: &[(&str, i32)] = &[
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
pub(super) const CURRENCY_SUFFIX: &[(&str, &str)] = &[
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
pub(super) const CURRENCY_PREFIX: &[(&str, &str)] = &[
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
    pub(super) fn parse(s: &str) -> Option<Unit> {
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

pub(super) fn starts_with_ci(c: &[char], i: usize, w: &str) -> bool {
    (i..)
        .zip(w.chars())
        .all(|(k, wc)| c.get(k).is_some_and(|ch| ch.eq_ignore_ascii_case(&wc)))
}

pub(super) fn is_word(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_'
}

/// A scale word at `i`: (end, power of ten).
pub(super) fn match_scale(c: &[char], i: usize) -> Option<(usize, i32)> {
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
