//! When two parsed answers mean the same thing.

use num_rational::BigRational;
use num_traits::{Signed, Zero};

use super::eval::{exact, numeric, points, to_f64, vars};
use super::parse::{Node, clean_label, is_var};
use super::relation::flip;

/// Comparison options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Opts {
    /// Accept a decimal equal to the exact value at the precision shown.
    pub(crate) decimals: bool,
}

/// Is `ans` an acceptable answer for `gold`?
pub(crate) fn equivalent(gold: &Node, ans: &Node, o: Opts) -> bool {
    let g = expand(gold);
    let a = expand(ans);
    BUDGET.with(|b| b.set(MAX_COMPARISONS));
    eq(&g, &a, o, 0)
}

/// Comparisons one `equivalent` call may make: nested collections could otherwise multiply
/// (sets of sets of sets…); past the budget, the answer is not equivalent.
const MAX_COMPARISONS: u32 = 20_000;

thread_local! {
    static BUDGET: std::cell::Cell<u32> = const { std::cell::Cell::new(MAX_COMPARISONS) };
}

fn spend() -> bool {
    BUDGET.with(|b| {
        let left = b.get();
        if left == 0 {
            return false;
        }
        b.set(left - 1);
        true
    })
}

/// `a ± b` → two answers (also inside an expression: `\frac{-1 \pm \sqrt{13}}{4}`, every `±`
/// taking the same sign); `x = a ± b` → `x = a+b, x = a-b`; `(p, q) = (3, 2)` → `(p = 3, q = 2)`.
fn expand(n: &Node) -> Node {
    match n {
        Node::Eq(l, r) if has_pm(r) => Node::List(
            [true, false]
                .into_iter()
                .map(|plus| Node::Eq(l.clone(), Box::new(pick_sign(r, plus))))
                .collect(),
        ),
        Node::Eq(l, r) if matches!((&**l, &**r), (Node::Tuple(a), Node::Tuple(b)) if a.len() == b.len() && a.iter().all(is_var)) =>
        {
            let (Node::Tuple(a), Node::Tuple(b)) = (&**l, &**r) else {
                unreachable!("matched above")
            };
            Node::Tuple(
                a.iter()
                    .zip(b)
                    .map(|(x, v)| Node::Eq(Box::new(x.clone()), Box::new(v.clone())))
                    .collect(),
            )
        }
        // `V_1 : V_2 = 11 : 21`, `A:B = 1`: the ratio of the named quantities is the value
        Node::Eq(l, r)
            if matches!(&**l, Node::Ratio(a) if a.iter().all(is_var)) && !has_any_var(r) =>
        {
            (**r).clone()
        }
        // `p=5, q=2; p=7, q=2`: the same names assigned again are several tuples
        Node::List(v) if let Some(groups) = assignment_groups(v) => Node::List(groups),
        n if has_pm(n) && !matches!(n, Node::List(_) | Node::Set(_) | Node::Labelled(..)) => {
            Node::List(vec![pick_sign(n, true), pick_sign(n, false)])
        }
        Node::List(v) => flatten(v.iter().map(expand).collect(), true),
        Node::Set(v) => flatten(v.iter().map(expand).collect(), false),
        Node::Labelled(l, x) => Node::Labelled(l.clone(), Box::new(expand(x))),
        other => other.clone(),
    }
}

/// `[p=5, q=2, p=7, q=2]` → `[(p=5, q=2), (p=7, q=2)]` when the names repeat in blocks.
fn assignment_groups(v: &[Node]) -> Option<Vec<Node>> {
    let names: Vec<&str> = v
        .iter()
        .map(|n| match n {
            Node::Eq(l, _) => match &**l {
                Node::Var(x) => Some(x.as_str()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Option<_>>()?;
    let k = names.iter().skip(1).position(|x| *x == names[0])? + 1;
    if k < 2 || !names.len().is_multiple_of(k) || names.len() == k {
        return None;
    }
    let block = &names[..k];
    if (1..k).any(|i| block[i..].contains(&block[i - 1])) {
        return None;
    }
    if !names.chunks(k).all(|c| c == block) {
        return None;
    }
    Some(v.chunks(k).map(|c| Node::Tuple(c.to_vec())).collect())
}

fn has_pm(n: &Node) -> bool {
    match n {
        Node::PlusMinus(..) => true,
        Node::Neg(a) | Node::Func(_, a) | Node::Percent(a) | Node::Deg(a) | Node::Fact(a) => {
            has_pm(a)
        }
        Node::Div(a, b) | Node::Pow(a, b) => has_pm(a) || has_pm(b),
        Node::Add(v) | Node::Mul(v) => v.iter().any(has_pm),
        _ => false,
    }
}

/// The expression with every `a ± b` read as `a + b` (plus) or `a − b`.
fn pick_sign(n: &Node, plus: bool) -> Node {
    let p = |x: &Node| Box::new(pick_sign(x, plus));
    match n {
        Node::PlusMinus(a, b) => {
            let b = pick_sign(b, plus);
            Node::Add(vec![
                pick_sign(a, plus),
                if plus { b } else { Node::Neg(Box::new(b)) },
            ])
        }
        Node::Neg(a) => Node::Neg(p(a)),
        Node::Func(f, a) => Node::Func(f.clone(), p(a)),
        Node::Percent(a) => Node::Percent(p(a)),
        Node::Deg(a) => Node::Deg(p(a)),
        Node::Fact(a) => Node::Fact(p(a)),
        Node::Div(a, b) => Node::Div(p(a), p(b)),
        Node::Pow(a, b) => Node::Pow(p(a), p(b)),
        Node::Add(v) => Node::Add(v.iter().map(|x| pick_sign(x, plus)).collect()),
        Node::Mul(v) => Node::Mul(v.iter().map(|x| pick_sign(x, plus)).collect()),
        other => other.clone(),
    }
}

fn flatten(v: Vec<Node>, list: bool) -> Node {
    let mut out = Vec::new();
    for x in v {
        match x {
            Node::List(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    if list {
        Node::List(out)
    } else {
        Node::Set(out)
    }
}

fn items(n: &Node) -> Option<&[Node]> {
    match n {
        Node::List(v) | Node::Set(v) => Some(v),
        _ => None,
    }
}

fn base_name(v: &str) -> &str {
    v.split('_').next().unwrap_or(v)
}

fn eq(g: &Node, a: &Node, o: Opts, depth: usize) -> bool {
    if depth > 16 || !spend() {
        return false;
    }
    let d = depth + 1;
    if g == a {
        // the same tree (also what could not be evaluated: `F_n = \sum_{k=0}^{n-1} F_k`)
        return true;
    }
    match (g, a) {
        (Node::Labelled(gl, gi), Node::Labelled(al, ai)) => {
            labels_match(gl, al) && eq(gi, ai, o, d)
        }
        (Node::Labelled(_, gi), _) => eq(gi, a, o, d),
        (_, Node::Labelled(_, ai)) => eq(g, ai, o, d),
        // `x < -1 \text{ or } x > 3` is the union (-∞, -1) ∪ (3, ∞)
        (Node::Union(_), Node::List(v)) if v.iter().all(is_interval) => {
            eq(g, &Node::Union(v.clone()), o, d)
        }
        (Node::List(v), Node::Union(_)) if v.iter().all(is_interval) => {
            eq(&Node::Union(v.clone()), a, o, d)
        }
        _ if (is_matrix_valued(g) || is_matrix_valued(a))
            && !matches!(
                (g, a),
                (Node::Matrix(_), Node::Tuple(_)) | (Node::Tuple(_), Node::Matrix(_))
            ) =>
        {
            match (matrix_value(g), matrix_value(a)) {
                (Some(x), Some(y)) => {
                    x.len() == y.len() && x.iter().zip(&y).all(|(r, s)| ordered(r, s, o, d))
                }
                _ => false,
            }
        }
        _ => {
            if let (Some(gi), Some(ai)) = (items(g), items(a)) {
                return matching(gi, ai, o, d);
            }
            if let Some(gi) = items(g) {
                return match (gi, a) {
                    ([one], _) => eq(one, a, o, d),
                    (_, Node::Tuple(ai)) => ordered(gi, ai, o, d),
                    // `A \cap B = \{1, 2\}`
                    (_, Node::Eq(al, ar)) if names_a_quantity(al) && !has_any_var(ar) => {
                        eq(g, ar, o, d)
                    }
                    _ => false,
                };
            }
            if let Some(ai) = items(a) {
                return match (g, ai) {
                    (_, [one]) => eq(g, one, o, d),
                    // the same answer stated more than once (`0.125，即 12.5%`)
                    (_, many)
                        if !matches!(g, Node::Tuple(_)) && many.iter().all(|x| eq(g, x, o, d)) =>
                    {
                        true
                    }
                    (Node::Tuple(gi), _) => ordered(gi, ai, o, d),
                    _ => false,
                };
            }
            structural(g, a, o, d)
        }
    }
}

/// A side that names what is asked for (`a+b`, `\sin A`, `f(x)_{\max}`): variables and
/// functions only. With a number in it (`x + 1 = 3`, `a + 3z = 0`) it is an equation to solve.
fn names_a_quantity(n: &Node) -> bool {
    match n {
        Node::Var(_) | Node::Pi | Node::E => true,
        Node::Add(v) | Node::Mul(v) => v.iter().all(names_a_quantity),
        Node::Func(_, a) => names_a_quantity(a),
        _ => false,
    }
}

/// The entries of a one-column or one-row matrix.
fn vector(m: &[Vec<Node>]) -> Option<Vec<Node>> {
    match m {
        [row] => Some(row.clone()),
        rows if rows.iter().all(|r| r.len() == 1) => {
            Some(rows.iter().map(|r| r[0].clone()).collect())
        }
        _ => None,
    }
}

/// A number with no variables (not a structure).
fn is_constant(n: &Node) -> bool {
    !has_any_var(n)
        && !matches!(
            n,
            Node::Tuple(_)
                | Node::Interval(..)
                | Node::Union(_)
                | Node::Set(_)
                | Node::List(_)
                | Node::Matrix(_)
                | Node::Ratio(_)
                | Node::Rel(..)
                | Node::Text(_)
                | Node::Eq(..)
        )
}

fn is_interval(n: &Node) -> bool {
    matches!(n, Node::Interval(..))
}

fn is_matrix_valued(n: &Node) -> bool {
    match n {
        Node::Matrix(_) => true,
        Node::Add(v) | Node::Mul(v) => v.iter().any(is_matrix_valued),
        Node::Neg(x) => is_matrix_valued(x),
        _ => false,
    }
}

type Rows = Vec<Vec<Node>>;

/// A sum, product or scalar multiple of matrices as one matrix of expressions.
fn matrix_value(n: &Node) -> Option<Rows> {
    match n {
        Node::Matrix(m) => Some(m.clone()),
        Node::Neg(x) => Some(map_cells(matrix_value(x)?, |c| Node::Neg(Box::new(c)))),
        Node::Add(v) => {
            let mut acc: Option<Rows> = None;
            for t in v {
                let m = matrix_value(t)?;
                acc = Some(match acc {
                    None => m,
                    Some(a) => {
                        if a.len() != m.len() || a.iter().zip(&m).any(|(r, s)| r.len() != s.len()) {
                            return None;
                        }
                        a.into_iter()
                            .zip(m)
                            .map(|(r, s)| {
                                r.into_iter()
                                    .zip(s)
                                    .map(|(x, y)| Node::Add(vec![x, y]))
                                    .collect()
                            })
                            .collect()
                    }
                });
            }
            acc
        }
        Node::Mul(v) => {
            let mut acc: Option<Rows> = None;
            let mut scalars = Vec::new();
            for t in v {
                if !is_matrix_valued(t) {
                    scalars.push(t.clone());
                    continue;
                }
                let m = matrix_value(t)?;
                acc = Some(match acc {
                    None => m,
                    Some(a) => product(&a, &m)?,
                });
            }
            let m = acc?;
            Some(if scalars.is_empty() {
                m
            } else {
                map_cells(m, |c| {
                    let mut f = scalars.clone();
                    f.push(c);
                    Node::Mul(f)
                })
            })
        }
        _ => None,
    }
}

fn map_cells(m: Rows, f: impl Fn(Node) -> Node) -> Rows {
    m.into_iter()
        .map(|r| r.into_iter().map(&f).collect())
        .collect()
}

fn product(a: &Rows, b: &Rows) -> Option<Rows> {
    let inner = a.first()?.len();
    if inner != b.len() || inner == 0 || a.len() * b[0].len() * inner > 4_096 {
        return None;
    }
    Some(
        a.iter()
            .map(|row| {
                (0..b[0].len())
                    .map(|j| {
                        Node::Add(
                            (0..inner)
                                .map(|k| Node::Mul(vec![row[k].clone(), b[k][j].clone()]))
                                .collect(),
                        )
                    })
                    .collect()
            })
            .collect(),
    )
}

fn labels_match(g: &str, a: &str) -> bool {
    let (g, a) = (clean_label(g), clean_label(a));
    g.is_empty() || a.is_empty() || g.contains(&a) || a.contains(&g)
}

fn ordered(g: &[Node], a: &[Node], o: Opts, d: usize) -> bool {
    g.len() == a.len() && g.iter().zip(a).all(|(x, y)| eq(x, y, o, d))
}

/// Unordered one-to-one matching (small collections; backtracking is bounded by size).
fn matching(g: &[Node], a: &[Node], o: Opts, d: usize) -> bool {
    if g.len() != a.len() || g.len() > 32 {
        return false;
    }
    let n = g.len();
    let table: Vec<Vec<bool>> = g
        .iter()
        .map(|x| a.iter().map(|y| eq(x, y, o, d)).collect())
        .collect();
    let mut used = vec![false; n];
    fn assign(i: usize, t: &[Vec<bool>], used: &mut [bool], budget: &mut u32) -> bool {
        if i == t.len() {
            return true;
        }
        for j in 0..t.len() {
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            if t[i][j] && !used[j] {
                used[j] = true;
                if assign(i + 1, t, used, budget) {
                    return true;
                }
                used[j] = false;
            }
        }
        false
    }
    let mut budget = 100_000;
    assign(0, &table, &mut used, &mut budget)
}

fn structural(g: &Node, a: &Node, o: Opts, d: usize) -> bool {
    match (g, a) {
        (Node::Text(x), Node::Text(y)) => norm_text(x) == norm_text(y),
        (Node::Text(_), _) | (_, Node::Text(_)) => false,
        (Node::Tuple(x), Node::Tuple(y)) => ordered(x, y, o, d),
        (Node::Interval(gl, glo, ghi, gr), Node::Interval(al, alo, ahi, ar)) => {
            gl == al && gr == ar && eq(glo, alo, o, d) && eq(ghi, ahi, o, d)
        }
        (Node::Interval(false, lo, hi, false), Node::Tuple(t))
        | (Node::Tuple(t), Node::Interval(false, lo, hi, false))
            if t.len() == 2 =>
        {
            eq(lo, &t[0], o, d) && eq(hi, &t[1], o, d)
        }
        (Node::Union(x), Node::Union(y)) => matching(x, y, o, d),
        // `1:2` is also the fraction 1/2 (not a time: `12:00` has no quotient)
        (Node::Ratio(r), other) | (other, Node::Ratio(r)) if r.len() == 2 && is_constant(other) => {
            scalar(
                &Node::Div(Box::new(r[0].clone()), Box::new(r[1].clone())),
                other,
                o,
            )
        }
        // a column (or row) vector and the tuple of its entries
        (Node::Matrix(m), Node::Tuple(t)) | (Node::Tuple(t), Node::Matrix(m))
            if vector(m).is_some_and(|v| v.len() == t.len()) =>
        {
            ordered(&vector(m).unwrap_or_default(), t, o, d)
        }
        (Node::Matrix(x), Node::Matrix(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(r, s)| ordered(r, s, o, d))
        }
        (Node::Ratio(x), Node::Ratio(y)) => ordered(x, y, o, d),
        (Node::Rel(xo, x), Node::Rel(yo, y)) => {
            let reversed: Vec<char> = yo.iter().rev().map(|c| flip(*c)).collect();
            let y_rev: Vec<Node> = y.iter().rev().cloned().collect();
            (xo == yo && ordered(x, y, o, d)) || (*xo == reversed && ordered(x, &y_rev, o, d))
        }
        (Node::Matrix(_) | Node::Ratio(_) | Node::Rel(..), _)
        | (_, Node::Matrix(_) | Node::Ratio(_) | Node::Rel(..)) => false,
        (Node::Eq(gl, gr), Node::Eq(al, ar)) => {
            if let (Node::Var(x), Node::Var(y)) = (&**gl, &**al) {
                // y = 2x+1 and f(x) = 2x+1 define the same function
                let function_like = |v: &str| v == "y" || v.contains('(');
                if base_name(x) == base_name(y) || (function_like(x) && function_like(y)) {
                    return eq(gr, ar, o, d);
                }
                if !has_var(gr, x) && !has_var(ar, y) {
                    return false;
                }
            }
            same_relation(gl, gr, al, ar)
        }
        (Node::Eq(gl, gr), _) => {
            if is_var(gl) || !has_any_var(gl) && !has_any_var(gr) {
                eq(gr, a, o, d)
            } else if is_var(gr) {
                eq(gl, a, o, d)
            } else if names_a_quantity(gl) && !has_any_var(gr) && is_constant(a) {
                // `a+b = 6`, `\sin A = 3/5`, `f(x)_{\max} = 3`: the value asked for
                eq(gr, a, o, d)
            } else {
                false
            }
        }
        (_, Node::Eq(al, ar)) => {
            if is_var(al) || !has_any_var(al) && !has_any_var(ar) {
                eq(g, ar, o, d)
            } else if is_var(ar) {
                eq(g, al, o, d)
            } else if names_a_quantity(al)
                && !has_any_var(ar)
                && !has_any_var(g)
                && !matches!(g, Node::Eq(..) | Node::Rel(..))
            {
                // also a set or interval: `A \cap B = \{1, 2\}`
                eq(g, ar, o, d)
            } else {
                false
            }
        }
        (Node::Tuple(_) | Node::Interval(..) | Node::Union(_), _)
        | (_, Node::Tuple(_) | Node::Interval(..) | Node::Union(_)) => false,
        _ => scalar(g, a, o) || canonical(g) == canonical(a),
    }
}

/// The tree with the terms of sums and the factors of products in a fixed order, for
/// expressions that cannot be evaluated (`F_k F_{n-k-1}` ≡ `F_{n-k-1} F_k`).
fn canonical(n: &Node) -> Node {
    let sorted = |v: &[Node]| {
        let mut v: Vec<Node> = v.iter().map(canonical).collect();
        v.sort_by_cached_key(|x| format!("{x:?}"));
        v
    };
    let c = |x: &Node| Box::new(canonical(x));
    match n {
        Node::Add(v) => Node::Add(sorted(v)),
        Node::Mul(v) => Node::Mul(sorted(v)),
        Node::Neg(a) => Node::Neg(c(a)),
        Node::Div(a, b) => Node::Div(c(a), c(b)),
        Node::Pow(a, b) => Node::Pow(c(a), c(b)),
        Node::Func(f, a) => Node::Func(f.clone(), c(a)),
        Node::Eq(a, b) => Node::Eq(c(a), c(b)),
        Node::Big(kind, k, lo, hi, body) => Node::Big(*kind, k.clone(), c(lo), c(hi), c(body)),
        other => other.clone(),
    }
}

fn norm_text(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

fn has_var(n: &Node, v: &str) -> bool {
    let mut vs = Vec::new();
    vars(n, &mut vs);
    vs.iter().any(|x| x == v)
}

fn has_any_var(n: &Node) -> bool {
    let mut vs = Vec::new();
    vars(n, &mut vs);
    !vs.is_empty()
}

/// Scalars, with `25%` ≡ `0.25` and (leniently) `25%` ≡ `25`.
fn scalar(g: &Node, a: &Node, o: Opts) -> bool {
    let strip = |n: &Node| match n {
        Node::Percent(x) => Some((**x).clone()),
        _ => None,
    };
    if value_eq(g, a, o) {
        return true;
    }
    if let Some(a2) = strip(a)
        && value_eq(g, &a2, o)
    {
        return true;
    }
    if let Some(g2) = strip(g)
        && value_eq(&g2, a, o)
    {
        return true;
    }
    // 45° and π/4
    let radians = |n: &Node| match n {
        Node::Deg(x) => Some(Node::Div(
            Box::new(Node::Mul(vec![(**x).clone(), Node::Pi])),
            Box::new(Node::Num(BigRational::from_integer(180.into()), None)),
        )),
        _ => None,
    };
    if let Some(a2) = radians(a)
        && value_eq(g, &a2, o)
    {
        return true;
    }
    if let Some(g2) = radians(g)
        && value_eq(&g2, a, o)
    {
        return true;
    }
    false
}

fn value_eq(g: &Node, a: &Node, o: Opts) -> bool {
    let mut vs = Vec::new();
    vars(g, &mut vs);
    vars(a, &mut vs);
    if vs.is_empty() {
        if let (Some(x), Some(y)) = (exact(g), exact(a)) {
            return x == y || (o.decimals && (decimal_match(a, &x) || decimal_match(g, &y)));
        }
        let (Some(x), Some(y)) = (numeric(g, &[]), numeric(a, &[])) else {
            return false;
        };
        if close(x, y) {
            return true;
        }
        return o.decimals && (decimal_match_f(a, x) || decimal_match_f(g, y));
    }
    let mut ok = 0;
    for env in points(&vs, 8) {
        let (Some(x), Some(y)) = (numeric(g, &env), numeric(a, &env)) else {
            return false;
        };
        if !x.is_finite() || !y.is_finite() {
            continue;
        }
        if !close(x, y) {
            return false;
        }
        ok += 1;
    }
    ok >= 3
}

fn close(x: f64, y: f64) -> bool {
    if x.is_infinite() || y.is_infinite() {
        return x == y;
    }
    (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
}

/// A decimal literal (possibly negated) and its decimal places.
fn decimal(n: &Node) -> Option<(f64, u32, usize)> {
    match n {
        Node::Num(r, Some(p)) => {
            let sig = r.numer().abs().to_string().trim_start_matches('0').len();
            Some((to_f64(r), *p, sig))
        }
        Node::Neg(x) => decimal(x).map(|(v, p, s)| (-v, p, s)),
        _ => None,
    }
}

/// `0.1667` for 1/6: the decimal equals the exact value rounded to the places shown. At
/// least three significant digits must be shown (`0.17` is not 1/6).
fn decimal_match(n: &Node, target: &BigRational) -> bool {
    decimal_match_f(n, to_f64(target))
}

fn decimal_match_f(n: &Node, target: f64) -> bool {
    let Some((v, places, sig)) = decimal(n) else {
        return false;
    };
    if sig < 3 || !target.is_finite() || target.is_zero() {
        return false;
    }
    if places > 15 {
        // beyond f64's places: equal to the precision f64 carries
        return (v - target).abs() <= 1e-14 * target.abs().max(1e-300);
    }
    let half = 0.5 * 10f64.powi(-(places as i32));
    (v - target).abs() <= half * (1.0 + 1e-9)
}

/// Two equations describe the same relation: `lhs − rhs` proportional at random points.
fn same_relation(gl: &Node, gr: &Node, al: &Node, ar: &Node) -> bool {
    let f = Node::Add(vec![gl.clone(), Node::Neg(Box::new(gr.clone()))]);
    let h = Node::Add(vec![al.clone(), Node::Neg(Box::new(ar.clone()))]);
    let mut vs = Vec::new();
    vars(&f, &mut vs);
    vars(&h, &mut vs);
    if vs.is_empty() {
        return false;
    }
    let mut ratio: Option<f64> = None;
    let mut ok = 0;
    for env in points(&vs, 8) {
        let (Some(x), Some(y)) = (numeric(&f, &env), numeric(&h, &env)) else {
            return false;
        };
        if !x.is_finite() || !y.is_finite() {
            continue;
        }
        if x.abs() < 1e-12 && y.abs() < 1e-12 {
            ok += 1;
            continue;
        }
        if y.abs() < 1e-12 {
            return false;
        }
        let r = x / y;
        match ratio {
            None => ratio = Some(r),
            Some(q) if close(q, r) => {}
            Some(_) => return false,
        }
        ok += 1;
    }
    ok >= 3 && ratio.is_some_and(|r| r != 0.0)
}
