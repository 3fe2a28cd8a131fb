//! Exact arithmetic (big rationals) where the value is rational, `f64` everywhere else.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::parse::Node;

/// Exponents and results beyond these bounds are left to floating point (`9^9^9`).
const MAX_EXP: u32 = 512;
const MAX_BITS: u64 = 2_048;

/// The exact value when the node is a rational number.
pub(crate) fn exact(n: &Node) -> Option<BigRational> {
    Some(match n {
        Node::Num(r, _) => r.clone(),
        Node::Neg(a) => -exact(a)?,
        Node::Add(v) => {
            let mut s = BigRational::zero();
            for x in v {
                s += exact(x)?;
            }
            s
        }
        Node::Mul(v) => {
            let mut p = BigRational::one();
            for x in v {
                p *= exact(x)?;
                if bits(&p) > MAX_BITS {
                    return None;
                }
            }
            p
        }
        Node::Div(a, b) => {
            let d = exact(b)?;
            if d.is_zero() {
                return None;
            }
            exact(a)? / d
        }
        Node::Percent(a) => exact(a)? / BigRational::from_integer(BigInt::from(100)),
        Node::Deg(a) => exact(a)?,
        Node::Pow(b, e) => {
            let e = exact(e)?;
            let b = exact(b)?;
            if e.is_integer() {
                let k = e.to_integer().to_i64()?;
                let m = k.unsigned_abs();
                if m > MAX_EXP as u64 || bits(&b).saturating_mul(m) > MAX_BITS {
                    return None;
                }
                if b.is_zero() && k < 0 {
                    return None;
                }
                let p = num_traits::pow(b, m as usize);
                if k < 0 { p.recip() } else { p }
            } else if e == BigRational::new(BigInt::one(), BigInt::from(2)) {
                sqrt_exact(&b)?
            } else {
                return None;
            }
        }
        Node::Func(f, a) if f == "sqrt" => sqrt_exact(&exact(a)?)?,
        Node::Func(f, a) if f == "abs" => exact(a)?.abs(),
        Node::Big(kind, k, lo, hi, body) => {
            let (lo, hi) = (int_bound(&exact(lo)?)?, int_bound(&exact(hi)?)?);
            if hi.saturating_sub(lo) > MAX_TERMS {
                return None;
            }
            let mut acc = if *kind == 'Σ' {
                BigRational::zero()
            } else {
                BigRational::one()
            };
            for i in lo..=hi {
                let term = exact(&substitute(body, k, i))?;
                if *kind == 'Σ' {
                    acc += term;
                } else {
                    acc *= term;
                }
                if bits(&acc) > MAX_BITS {
                    return None;
                }
            }
            acc
        }
        Node::Fact(a) => {
            let v = exact(a)?;
            if !v.is_integer() || v.is_negative() {
                return None;
            }
            let k = v.to_integer().to_u32()?;
            if k > 100 {
                return None;
            }
            let mut p = BigInt::one();
            for i in 2..=k {
                p *= i;
            }
            BigRational::from_integer(p)
        }
        _ => return None,
    })
}

/// Terms a finite sum or product may have.
const MAX_TERMS: i64 = 10_000;

fn int_bound(r: &BigRational) -> Option<i64> {
    r.is_integer().then(|| r.to_integer().to_i64()).flatten()
}

/// The body of a sum with its index replaced by an integer.
fn substitute(n: &Node, var: &str, value: i64) -> Node {
    let sub = |x: &Node| Box::new(substitute(x, var, value));
    let all = |v: &[Node]| v.iter().map(|x| substitute(x, var, value)).collect();
    match n {
        Node::Var(v) if v == var => Node::Num(BigRational::from_integer(value.into()), None),
        Node::Neg(a) => Node::Neg(sub(a)),
        Node::Add(v) => Node::Add(all(v)),
        Node::Mul(v) => Node::Mul(all(v)),
        Node::Div(a, b) => Node::Div(sub(a), sub(b)),
        Node::Pow(a, b) => Node::Pow(sub(a), sub(b)),
        Node::Func(f, a) => Node::Func(f.clone(), sub(a)),
        Node::Fact(a) => Node::Fact(sub(a)),
        Node::Tuple(v) => Node::Tuple(all(v)),
        Node::Big(kind, k, lo, hi, body) if k != var => {
            Node::Big(*kind, k.clone(), sub(lo), sub(hi), sub(body))
        }
        other => other.clone(),
    }
}

fn bits(r: &BigRational) -> u64 {
    r.numer().bits() + r.denom().bits()
}

fn sqrt_exact(r: &BigRational) -> Option<BigRational> {
    if r.is_negative() {
        return None;
    }
    let n = r.numer().sqrt();
    let d = r.denom().sqrt();
    (&n * &n == *r.numer() && &d * &d == *r.denom()).then(|| BigRational::new(n, d))
}

pub(crate) fn to_f64(r: &BigRational) -> f64 {
    r.to_f64().unwrap_or(f64::NAN)
}

/// The value in floating point, variables taken from `env`.
pub(crate) fn numeric(n: &Node, env: &[(String, f64)]) -> Option<f64> {
    Some(match n {
        Node::Num(r, _) => to_f64(r),
        Node::Pi => std::f64::consts::PI,
        Node::E => std::f64::consts::E,
        Node::Inf => f64::INFINITY,
        Node::Var(v) => env.iter().find(|(k, _)| k == v)?.1,
        Node::Neg(a) => -numeric(a, env)?,
        Node::Add(v) => v.iter().map(|x| numeric(x, env)).sum::<Option<f64>>()?,
        Node::Mul(v) => v.iter().map(|x| numeric(x, env)).product::<Option<f64>>()?,
        Node::Div(a, b) => numeric(a, env)? / numeric(b, env)?,
        Node::Pow(b, e) => numeric(b, env)?.powf(numeric(e, env)?),
        Node::Percent(a) => numeric(a, env)? / 100.0,
        Node::Deg(a) => numeric(a, env)?,
        Node::Big(kind, k, lo, hi, body) => {
            let (lo, hi) = (numeric(lo, env)?, numeric(hi, env)?);
            if lo.fract() != 0.0 || hi.fract() != 0.0 || hi - lo > MAX_TERMS as f64 {
                return None;
            }
            let mut acc = if *kind == 'Σ' { 0.0 } else { 1.0 };
            let mut inner = env.to_vec();
            inner.retain(|(v, _)| v != k);
            inner.push((k.clone(), 0.0));
            let mut i = lo;
            while i <= hi {
                inner.last_mut()?.1 = i;
                let t = numeric(body, &inner)?;
                if *kind == 'Σ' {
                    acc += t;
                } else {
                    acc *= t;
                }
                i += 1.0;
            }
            acc
        }
        Node::Fact(a) => {
            let v = numeric(a, env)?;
            if v < 0.0 || v.fract() != 0.0 || v > 170.0 {
                return None;
            }
            (1..=v as u32).map(f64::from).product()
        }
        Node::Func(f, a) => {
            if f == "binom" {
                let Node::Tuple(p) = &**a else { return None };
                let (n, k) = (numeric(p.first()?, env)?, numeric(p.get(1)?, env)?);
                if n.fract() != 0.0 || k.fract() != 0.0 || k < 0.0 || k > n || n > 1000.0 {
                    return None;
                }
                let mut r = 1.0;
                for i in 0..k as u32 {
                    r = r * (n - f64::from(i)) / f64::from(i + 1);
                }
                return Some(r);
            }
            // `\tan 60^\circ`: a trigonometric function of degrees
            let trig = matches!(f.as_str(), "sin" | "cos" | "tan" | "cot" | "sec" | "csc");
            let x = match &**a {
                Node::Deg(d) if trig => numeric(d, env)?.to_radians(),
                _ => numeric(a, env)?,
            };
            match f.as_str() {
                "sin" => x.sin(),
                "cos" => x.cos(),
                "tan" => x.tan(),
                "cot" => 1.0 / x.tan(),
                "sec" => 1.0 / x.cos(),
                "csc" => 1.0 / x.sin(),
                "arcsin" => x.asin(),
                "arccos" => x.acos(),
                "arctan" => x.atan(),
                "ln" | "log" => x.ln(),
                "lg" => x.log10(),
                "exp" => x.exp(),
                "sqrt" => x.sqrt(),
                "abs" => x.abs(),
                "sinh" => x.sinh(),
                "cosh" => x.cosh(),
                "tanh" => x.tanh(),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Variable names in the node, sorted and deduplicated.
pub(crate) fn vars(n: &Node, out: &mut Vec<String>) {
    match n {
        Node::Var(v) => {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        Node::Neg(a)
        | Node::Percent(a)
        | Node::Deg(a)
        | Node::Fact(a)
        | Node::Func(_, a)
        | Node::Labelled(_, a) => vars(a, out),
        Node::Div(a, b)
        | Node::Pow(a, b)
        | Node::PlusMinus(a, b)
        | Node::Eq(a, b)
        | Node::Interval(_, a, b, _) => {
            vars(a, out);
            vars(b, out);
        }
        Node::Add(v)
        | Node::Mul(v)
        | Node::Tuple(v)
        | Node::Set(v)
        | Node::Union(v)
        | Node::List(v) => v.iter().for_each(|x| vars(x, out)),
        Node::Ratio(v) | Node::Rel(_, v) => v.iter().for_each(|x| vars(x, out)),
        Node::Matrix(rows) => rows.iter().flatten().for_each(|x| vars(x, out)),
        Node::Big(_, k, lo, hi, body) => {
            vars(lo, out);
            vars(hi, out);
            let mut inner = Vec::new();
            vars(body, &mut inner);
            for v in inner {
                if &v != k && !out.contains(&v) {
                    out.push(v);
                }
            }
        }
        Node::Num(..) | Node::Pi | Node::E | Node::Inf | Node::Text(_) => {}
    }
    out.sort();
}

/// Deterministic evaluation points for the variables: magnitudes in [0.3, 2.7], half of the
/// points negative (so `\sqrt{x^2}` is not `x`), away from the small integers where distinct
/// expressions often coincide. Points where a side is undefined (`\ln x` at x < 0) are skipped.
pub(crate) fn points(vars: &[String], count: usize) -> Vec<Vec<(String, f64)>> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        0.3 + (state % 1_000_000) as f64 / 1_000_000.0 * 2.4
    };
    (0..count)
        .map(|k| {
            vars.iter()
                .map(|v| (v.clone(), if k % 2 == 1 { -next() } else { next() }))
                .collect()
        })
        .collect()
}
