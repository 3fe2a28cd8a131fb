//! Finding the numbers in an answer: text folding, Arabic and Chinese numerals with their
//! prefixes and suffixes, years, dates, list markers and operands passed over.

use super::*;

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
pub(super) fn dollar_is_currency(c: &[char], i: usize) -> bool {
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
pub(super) struct Cand {
    /// As written (after normalization), unit included.
    pub(super) text: String,
    pub(super) value: Dec,
    /// An explicit scale word (亿, million); `None` when there was none.
    pub(super) scale: Option<i32>,
    /// An explicit currency or percent sign; `None` for a bare number.
    pub(super) base: Option<Base>,
    /// A year (`2024` with no unit) or an operand of a calculation (`A − B = C`): picked
    /// only when nothing else is there.
    pub(super) minor: bool,
    /// (power of ten of the last digit shown, significant digits shown), for rounded answers.
    pub(super) shown: Option<(i32, usize)>,
    /// Preceded by a word saying the amount went down (`下降`, `decreased by`).
    pub(super) decrease: bool,
}

/// Measure words and units: a number followed by one counts something of that kind.
pub(super) const MEASURE_WORDS: &[&str] = &[
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

pub(super) const DATE_SUFFIX: &[&str] = &["年", "月", "日", "号", "季度", "财年", "周", "时"];

pub(super) fn scan(text: &str, gold: &Unit) -> Vec<Cand> {
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
pub(super) fn digits(c: &[char], mut i: usize) -> (usize, String) {
    let mut s = String::new();
    while i < c.len() && c[i].is_ascii_digit() {
        s.push(c[i]);
        i += 1;
    }
    (i, s)
}

/// Integer part with `,` grouping (3-digit, or Chinese 4-digit). Returns (end, digits).
pub(super) fn grouped_int(c: &[char], i: usize) -> (usize, String) {
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
pub(super) fn space_grouped(c: &[char], end: usize, first: String) -> (usize, String) {
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

pub(super) fn skip_spaces(c: &[char], mut i: usize, max: usize) -> usize {
    let start = i;
    while i < c.len() && c[i] == ' ' && i - start < max {
        i += 1;
    }
    i
}

/// The suffix after a number's digits: percent, scale, currency or the gold's own unit word.
/// Returns (end, scale, base).
pub(super) fn suffix(c: &[char], i: usize, gold: &Unit) -> (usize, Option<i32>, Option<Base>) {
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
pub(super) struct Prefix {
    pub(super) start: usize,
    pub(super) currency: Option<&'static str>,
    pub(super) negative: bool,
    pub(super) paren: bool,
    pub(super) percent: bool,
    pub(super) blocked: bool,
}

pub(super) fn prefix(c: &[char], start: usize) -> Prefix {
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
pub(super) fn operand(c: &[char], start: usize, end: usize) -> bool {
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

pub(super) const DECREASE: &[&str] = &[
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

pub(super) fn decrease_before(c: &[char], start: usize) -> bool {
    let from = start.saturating_sub(16);
    let before: String = c[from..start].iter().collect::<String>().to_lowercase();
    let before = before.trim_end_matches([' ', '了', '约', '为', '近', '超']);
    DECREASE.iter().any(|w| before.ends_with(w))
}

pub(super) fn date_follows(c: &[char], i: usize, gold: &Unit) -> bool {
    DATE_SUFFIX
        .iter()
        .any(|w| starts_with(c, i, w) && gold.base != Base::Other((*w).to_owned()))
}

pub(super) fn arabic(c: &[char], start: usize, gold: &Unit) -> (usize, Option<Cand>) {
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

pub(super) fn chinese(
    c: &[char],
    start: usize,
    gold: &Unit,
    words: &[u32],
) -> (usize, Option<Cand>) {
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
