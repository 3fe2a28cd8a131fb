//! Exact decimals: `m × 10^e` with its arithmetic and display, and plain numbers.

use std::fmt::Write as _;

use super::*;

/// `m × 10^e`, exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dec {
    pub(crate) m: i128,
    pub(crate) e: i32,
}

impl Dec {
    pub(super) fn norm(mut self) -> Dec {
        if self.m == 0 {
            return Dec { m: 0, e: 0 };
        }
        while self.m % 10 == 0 {
            self.m /= 10;
            self.e += 1;
        }
        self
    }

    pub(super) fn shift(self, k: i32) -> Dec {
        Dec {
            m: self.m,
            e: self.e.saturating_add(k),
        }
        .norm()
    }

    pub(super) fn neg(self) -> Dec {
        Dec {
            m: -self.m,
            e: self.e,
        }
    }

    pub(super) fn eq_value(&self, o: &Dec) -> bool {
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

pub(super) fn add_dec(a: Dec, b: Dec) -> Dec {
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
