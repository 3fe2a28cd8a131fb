//! Relations between expressions: equations, inequalities (as intervals where they bound one
//! variable), chains, membership (`x \in [a, b]`) and approximations (`1/3 \approx 0.33`).

use num_rational::BigRational;
use num_traits::{Signed, Zero};

use super::eval::exact;
use super::parse::{Node, Parser, Tok, split_top};

const REL_OPS: &[char] = &['=', '<', '>', '≤', '≥', '≠'];

pub(super) fn relation(toks: &[Tok]) -> Option<Node> {
    let toks = approximation_dropped(toks);
    let toks = toks.as_slice();
    // `x \in [2, 5]`, `z \in [-2, -1] \cup [1, 2]`: the set is the answer
    if let Some(k) = top_level(toks, |t| matches!(t, Tok::Op('∈'))) {
        let (lhs, rhs) = (&toks[..k], &toks[k + 1..]);
        if names_only(lhs) && !rhs.is_empty() {
            return relation(rhs);
        }
    }
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
            Tok::Op(o) if REL_OPS.contains(o) && depth <= 0 => {
                parts.push((op, &toks[start..k]));
                op = Some(*o);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push((op, &toks[start..]));
    let parts: Vec<_> = parts.into_iter().filter(|(_, p)| !p.is_empty()).collect();
    let mut exprs: Vec<(Option<char>, Node)> = Vec::with_capacity(parts.len());
    for (o, p) in parts {
        // `f(x) = …`, `0 < f(x) < 1`: a side that names a function is a variable
        let n = match function_name(p) {
            Some(name) => Some(Node::Var(name)),
            None => Parser::new(p).whole(),
        };
        if let Some(n) = n {
            exprs.push((o, n));
        }
    }
    match exprs.as_slice() {
        [] => None,
        [(_, one)] => Some(one.clone()),
        [(_, a), (Some('='), b)] => Some(Node::Eq(Box::new(a.clone()), Box::new(b.clone()))),
        [(_, a), (Some(o), b)] => Some(inequality(a, *o, b)),
        [(_, a), (Some(o1), x), (Some(o2), b)] if same_dir(*o1, *o2) => {
            // a < x ≤ b
            let (lo, lo_op, hi, hi_op) = if matches!(o1, '<' | '≤') {
                (a, *o1, b, *o2)
            } else {
                (b, *o2, a, *o1)
            };
            let lo_closed = lo_op == '≤' || lo_op == '≥';
            let hi_closed = hi_op == '≤' || hi_op == '≥';
            if is_var(x) {
                return Some(interval(lo_closed, lo, hi, hi_closed));
            }
            if let Some(u) = abs_between(lo_closed, lo, x, hi, hi_closed) {
                return Some(u);
            }
            Some(chain(&exprs))
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
        many => Some(chain(many)),
    }
}

/// The position of the first `pred` token outside brackets.
fn top_level(toks: &[Tok], pred: impl Fn(&Tok) -> bool) -> Option<usize> {
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate() {
        match t {
            Tok::Open(_) => depth += 1,
            Tok::Close(_) => depth -= 1,
            _ if depth <= 0 && pred(t) => return Some(k),
            _ => {}
        }
    }
    None
}

/// `x`, `(x, y)`, `x_1`: only names (what stands left of `\in`).
fn names_only(toks: &[Tok]) -> bool {
    !toks.is_empty()
        && toks.iter().all(|t| {
            matches!(
                t,
                Tok::Ident(_)
                    | Tok::Comma
                    | Tok::Open('(')
                    | Tok::Close(')')
                    | Tok::Op('_')
                    | Tok::Num(_)
            )
        })
        && toks.iter().any(|t| matches!(t, Tok::Ident(_)))
}

/// `1/3 \approx 0.33` keeps the exact side; `x \approx 11` (a name, then the value) keeps the
/// value. Only up to the next relation operator: `x = 1/3 \approx 0.33` is `x = 1/3`.
fn approximation_dropped(toks: &[Tok]) -> Vec<Tok> {
    let Some(k) = top_level(toks, |t| matches!(t, Tok::Op('≈'))) else {
        return toks.to_vec();
    };
    let before = &toks[..k];
    let after = &toks[k + 1..];
    let rel_start = before
        .iter()
        .rposition(|t| matches!(t, Tok::Op(o) if REL_OPS.contains(o)))
        .map_or(0, |i| i + 1);
    let side = &before[rel_start..];
    if side.is_empty() || names_only(side) {
        // `x \approx 11`: the value is the approximate side
        let mut out = before.to_vec();
        if !side.is_empty() {
            out.push(Tok::Op('='));
        }
        out.extend(approximation_dropped(after));
        return out;
    }
    // drop `\approx …` up to the next relation operator
    let resume = after
        .iter()
        .position(|t| matches!(t, Tok::Op(o) if REL_OPS.contains(o)))
        .unwrap_or(after.len());
    let mut out = before.to_vec();
    out.extend(approximation_dropped(&after[resume..]));
    out
}

fn interval(lo_closed: bool, lo: &Node, hi: &Node, hi_closed: bool) -> Node {
    Node::Interval(
        lo_closed,
        Box::new(lo.clone()),
        Box::new(hi.clone()),
        hi_closed,
    )
}

/// `1 ≤ |z| ≤ 3/2` → [-3/2, -1] ∪ [1, 3/2] (exact bounds only).
fn abs_between(lo_closed: bool, lo: &Node, x: &Node, hi: &Node, hi_closed: bool) -> Option<Node> {
    let Node::Func(f, inner) = x else { return None };
    if f != "abs" || !is_var(inner) {
        return None;
    }
    let (a, b) = (exact(lo)?, exact(hi)?);
    if a.is_negative() || b < a {
        return None;
    }
    let neg = |n: &Node| Node::Neg(Box::new(n.clone()));
    if a.is_zero() {
        // 0 ≤ |z| ≤ b is [-b, b]; 0 < |z| ≤ b leaves out 0
        let whole = interval(hi_closed, &neg(hi), hi, hi_closed);
        return Some(if lo_closed {
            whole
        } else {
            Node::Union(vec![
                interval(
                    hi_closed,
                    &neg(hi),
                    &Node::Num(BigRational::zero(), None),
                    false,
                ),
                interval(false, &Node::Num(BigRational::zero(), None), hi, hi_closed),
            ])
        });
    }
    Some(Node::Union(vec![
        interval(hi_closed, &neg(hi), &neg(lo), lo_closed),
        interval(lo_closed, lo, hi, hi_closed),
    ]))
}

/// `|x| > 2` → (-∞, -2) ∪ (2, ∞); `|x| ≤ 2` → [-2, 2] (an exact bound ≥ 0).
fn abs_inequality(a: &Node, op: char, b: &Node) -> Option<Node> {
    let (x, op, bound) = match (a, b) {
        (Node::Func(f, x), _) if f == "abs" => (x, op, b),
        (_, Node::Func(f, x)) if f == "abs" => (x, flip(op), a),
        _ => return None,
    };
    if !is_var(x) || exact(bound)?.is_negative() {
        return None;
    }
    let neg = Node::Neg(Box::new(bound.clone()));
    let inf = Node::Inf;
    let ninf = Node::Neg(Box::new(Node::Inf));
    Some(match op {
        '<' => interval(false, &neg, bound, false),
        '≤' => interval(true, &neg, bound, true),
        '>' => Node::Union(vec![
            interval(false, &ninf, &neg, false),
            interval(false, bound, &inf, false),
        ]),
        '≥' => Node::Union(vec![
            interval(false, &ninf, &neg, true),
            interval(true, bound, &inf, false),
        ]),
        _ => return None,
    })
}

/// A relation kept as written (`x ≠ 3`, `f(2) < f(1) < f(4)`).
fn chain(exprs: &[(Option<char>, Node)]) -> Node {
    Node::Rel(
        exprs.iter().skip(1).filter_map(|(o, _)| *o).collect(),
        exprs.iter().map(|(_, n)| n.clone()).collect(),
    )
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

pub(crate) fn flip(op: char) -> char {
    match op {
        '<' => '>',
        '>' => '<',
        '≤' => '≥',
        '≥' => '≤',
        o => o,
    }
}

/// `k·x + c` with exact k ≠ 0 and c: (x, k, c).
fn linear(n: &Node) -> Option<(&Node, BigRational, BigRational)> {
    match n {
        Node::Var(_) => Some((n, BigRational::from_integer(1.into()), BigRational::zero())),
        Node::Neg(a) => {
            let (x, k, c) = linear(a)?;
            Some((x, -k, -c))
        }
        Node::Mul(v) if v.len() == 2 => {
            let (k, x) = match (exact(&v[0]), exact(&v[1])) {
                (Some(k), None) => (k, &v[1]),
                (None, Some(k)) => (k, &v[0]),
                _ => return None,
            };
            let (x, k2, c) = linear(x)?;
            Some((x, k2 * &k, c * k))
        }
        Node::Add(v) => {
            let mut found = None;
            let mut c = BigRational::zero();
            for t in v {
                match exact(t) {
                    Some(r) => c += r,
                    None if found.is_none() => found = Some(linear(t)?),
                    None => return None,
                }
            }
            let (x, k, c0) = found?;
            Some((x, k, c0 + c))
        }
        _ => None,
    }
}

/// `linear(n)` with a nonzero coefficient: `0x < 0` is no bound on x (and no division by 0).
fn steep(n: &Node) -> Option<(&Node, BigRational, BigRational)> {
    linear(n).filter(|(_, k, _)| !k.is_zero())
}

/// `x > 2` → (2, ∞); `x ≤ 3` → (-∞, 3]; `-x > -1` → (-∞, 1); `2x + 1 ≥ 5` → [2, ∞); anything
/// else stays a relation.
fn inequality(a: &Node, op: char, b: &Node) -> Node {
    let inf = || Box::new(Node::Inf);
    let ninf = || Box::new(Node::Neg(Box::new(Node::Inf)));
    if let Some(n) = abs_inequality(a, op, b) {
        return n;
    }
    let (op, bound) = if is_var(a) && !matches!(b, Node::Var(_)) {
        (op, b.clone())
    } else if is_var(b) && !matches!(a, Node::Var(_)) {
        (flip(op), a.clone())
    } else if let (Some((_, k, c)), Some(r)) = (steep(a), exact(b)) {
        let v = (r - c) / &k;
        (
            if k.is_negative() { flip(op) } else { op },
            Node::Num(v, None),
        )
    } else if let (Some(r), Some((_, k, c))) = (exact(a), steep(b)) {
        let v = (r - c) / &k;
        let op = flip(op);
        (
            if k.is_negative() { flip(op) } else { op },
            Node::Num(v, None),
        )
    } else {
        return Node::Rel(vec![op], vec![a.clone(), b.clone()]);
    };
    let bd = Box::new(bound);
    match op {
        '>' => Node::Interval(false, bd, inf(), false),
        '≥' => Node::Interval(true, bd, inf(), false),
        '<' => Node::Interval(false, ninf(), bd, false),
        '≤' => Node::Interval(false, ninf(), bd, true),
        _ => Node::Rel(vec![op], vec![a.clone(), b.clone()]),
    }
}
