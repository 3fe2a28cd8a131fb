//! Answers written back as math: the canonical form in messages, snapshots and
//! `extracted`, readable again by the parser (`1/2`, `(-oo, 3]`, `x ≠ 3`).

use num_traits::Signed;

use super::eval;
use super::parse::Node;

/// A short canonical rendering: exact values reduced (`\dfrac{2}{4}` → `1/2`).
pub(super) fn show(n: &Node) -> String {
    let mut vs = Vec::new();
    eval::vars(n, &mut vs);
    if vs.is_empty()
        && !matches!(n, Node::Num(..) | Node::Percent(_) | Node::Deg(_))
        && let Some(r) = eval::exact(n)
    {
        return rational(&r);
    }
    render(n, 0)
}

fn rational(r: &num_rational::BigRational) -> String {
    if r.is_integer() {
        r.numer().to_string()
    } else {
        format!("{}/{}", r.numer(), r.denom())
    }
}

fn render(n: &Node, depth: usize) -> String {
    if depth > 40 {
        return "…".into();
    }
    let d = depth + 1;
    let atom = |x: &Node| {
        let s = render(x, d);
        if matches!(
            x,
            Node::Add(_) | Node::Neg(_) | Node::Div(..) | Node::Mul(_) | Node::PlusMinus(..)
        ) || matches!(x, Node::Num(r, None) if !r.is_integer() || r.is_negative())
        {
            format!("({s})")
        } else {
            s
        }
    };
    let join = |v: &[Node], sep: &str| v.iter().map(|x| render(x, d)).collect::<Vec<_>>().join(sep);
    match n {
        Node::Num(r, Some(p)) => {
            let v = eval::to_f64(r);
            format!("{v:.*}", *p as usize)
        }
        Node::Num(r, None) => rational(r),
        Node::Var(v) => match v.split_once('_') {
            // F_{n-k-1} was read as the name F_nk1; written back so it reads the same
            Some((base, sub)) if !v.contains('(') => format!("{base}_{{{sub}}}"),
            _ => v.clone(),
        },
        Node::Pi => "pi".into(),
        Node::E => "e".into(),
        Node::Inf => "oo".into(),
        Node::Add(v) => {
            let mut s = String::new();
            for (i, x) in v.iter().enumerate() {
                match x {
                    Node::Neg(y) => {
                        s.push('-');
                        s.push_str(&atom(y));
                    }
                    _ => {
                        if i > 0 {
                            s.push('+');
                        }
                        s.push_str(&render(x, d));
                    }
                }
            }
            s
        }
        Node::Mul(v) => v.iter().map(atom).collect::<Vec<_>>().join("*"),
        Node::Div(a, b) => format!("{}/{}", atom(a), atom(b)),
        Node::Neg(a) => format!("-{}", atom(a)),
        Node::Pow(a, b) => {
            let base = if matches!(**a, Node::Pow(..)) {
                format!("({})", render(a, d))
            } else {
                atom(a)
            };
            let exp = if matches!(**b, Node::Pow(..)) {
                format!("({})", render(b, d))
            } else {
                atom(b)
            };
            format!("{base}^{exp}")
        }
        Node::Func(f, a) if f == "binom" => match &**a {
            Node::Tuple(p) if p.len() == 2 => {
                format!("\\binom{{{}}}{{{}}}", render(&p[0], d), render(&p[1], d))
            }
            other => format!("binom({})", render(other, d)),
        },
        Node::Func(f, a) => format!("{f}({})", render(a, d)),
        Node::Percent(a) => format!("{}%", atom(a)),
        Node::Deg(a) => format!("{}°", atom(a)),
        Node::Fact(a) => format!("{}!", atom(a)),
        Node::PlusMinus(a, b) => format!("{}±{}", render(a, d), atom(b)),
        Node::Tuple(v) => format!("({})", join(v, ", ")),
        Node::Interval(l, a, b, r) => format!(
            "{}{}, {}{}",
            if *l { '[' } else { '(' },
            render(a, d),
            render(b, d),
            if *r { ']' } else { ')' }
        ),
        Node::Set(v) => format!("{{{}}}", join(v, ", ")),
        Node::Union(v) => join(v, " ∪ "),
        Node::List(v) => join(v, ", "),
        Node::Eq(a, b) => format!("{} = {}", render(a, d), render(b, d)),
        Node::Labelled(l, x) => format!("{l}: {}", render(x, d)),
        Node::Text(t) => format!("{t:?}"),
        Node::Matrix(rows) => format!(
            "\\begin{{pmatrix}}{}\\end{{pmatrix}}",
            rows.iter()
                .map(|r| join(r, " & "))
                .collect::<Vec<_>>()
                .join(" \\\\ ")
        ),
        Node::Ratio(v) => join(v, ":"),
        Node::Rel(ops, sides) => {
            let mut s = String::new();
            for (k, x) in sides.iter().enumerate() {
                if k > 0 {
                    s.push_str(&format!(" {} ", ops.get(k - 1).copied().unwrap_or('?')));
                }
                s.push_str(&render(x, d));
            }
            s
        }
        Node::Big(kind, k, lo, hi, body) => format!(
            "\\{}_{{{k}={}}}^{{{}}} ({})",
            if *kind == 'Σ' { "sum" } else { "prod" },
            render(lo, d),
            render(hi, d),
            render(body, d)
        ),
    }
}
