//! The Chinese numeral reader (`五百八十一亿六千万`, `二〇二四`, `十二点五`), shared with `math`.

use super::*;

pub(super) fn cn_digit(ch: char) -> Option<i128> {
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

pub(super) fn cn_small(ch: char) -> Option<i128> {
    Some(match ch {
        '十' | '拾' => 10,
        '百' | '佰' => 100,
        '千' | '仟' => 1000,
        _ => return None,
    })
}

pub(super) fn is_cn_numeral(ch: char) -> bool {
    cn_digit(ch).is_some() || cn_small(ch).is_some() || ch == '万' || ch == '亿'
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
    // the last of 十/百/千 in this section: they must come in falling order, so in `十六千米`
    // the 千 starts the unit 千米 (sixteen kilometres), not 6,010
    let mut last_small = i128::MAX;
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
            if u >= last_small {
                break;
            }
            last_small = u;
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
            last_small = i128::MAX;
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
            last_small = i128::MAX;
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
