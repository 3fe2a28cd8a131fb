//! LaTeX and plain-text answers to a [`Node`] tree.
//!
//! The parser is a hand-written recursive descent over a token list: linear in the input
//! apart from nesting, which is capped ([`MAX_DEPTH`]), as are the input length
//! ([`MAX_INPUT`]) and the token count.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

pub(super) use super::lex::Tok;
use super::lex::{is_conclusion, lex, remarks_dropped, set_builder, split_frac_digits};
pub(crate) use super::relation::is_var;
use super::{latex, relation};

/// Characters of one answer the parser looks at (the final answer, not the whole output).
pub(crate) const MAX_INPUT: usize = 4_000;
const MAX_DEPTH: usize = 64;

/// A parsed answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// A number; `Some(places)` when written as a decimal (`0.1667` → 4).
    Num(BigRational, Option<u32>),
    Var(String),
    Pi,
    E,
    Inf,
    Add(Vec<Node>),
    Mul(Vec<Node>),
    Div(Box<Node>, Box<Node>),
    Neg(Box<Node>),
    Pow(Box<Node>, Box<Node>),
    Func(String, Box<Node>),
    /// `x%`: worth x/100.
    Percent(Box<Node>),
    /// `45^\circ`: worth 45, and also π/4 when compared with radians.
    Deg(Box<Node>),
    Fact(Box<Node>),
    /// `a ± b`: two answers.
    PlusMinus(Box<Node>, Box<Node>),
    /// `(a, b, …)`; with two parts it may also be an open interval.
    Tuple(Vec<Node>),
    /// (left closed, low, high, right closed)
    Interval(bool, Box<Node>, Box<Node>, bool),
    Set(Vec<Node>),
    Union(Vec<Node>),
    /// Top-level answers separated by `,` `或` `and` …: compared as an unordered collection.
    List(Vec<Node>),
    Eq(Box<Node>, Box<Node>),
    Labelled(String, Box<Node>),
    Text(String),
    /// `\begin{pmatrix}…\end{pmatrix}` (also `bmatrix`, `array`, …): rows of entries.
    Matrix(Vec<Vec<Node>>),
    /// `3:2`, `12:00`: compared part by part.
    Ratio(Vec<Node>),
    /// A relation kept as written: operators between sides (`x ≠ 3`, `f(2) < f(1) < f(4)`).
    Rel(Vec<char>, Vec<Node>),
    /// `\sum_{k=a}^{b} body` ('Σ') or `\prod` ('Π'): (kind, index, low, high, body).
    Big(char, String, Box<Node>, Box<Node>, Box<Node>),
}

/// Parses an answer; `None` when nothing mathematical is in it.
pub(crate) fn parse(s: &str) -> Option<Node> {
    let mut text = crate::number::fold(s.trim());
    if text.chars().count() > MAX_INPUT {
        text = text
            .chars()
            .rev()
            .take(MAX_INPUT)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
    }
    if let Some(inner) = latex::sole_text(&text) {
        // `\text{Evelyn}`, `\text{(C)}`, `\mathrm{e}`: the words (or math) inside are the answer
        return parse(&inner);
    }
    text = latex::environments(&text)?;
    text = latex::unwrap_text_commands(&text);
    text = latex::repeating_decimals(&text);
    for (from, to) in latex::REPLACE {
        if text.contains(from) {
            text = text.replace(from, to);
        }
    }
    let mut toks = set_builder(remarks_dropped(split_frac_digits(lex(&text))));
    if toks.is_empty() {
        return None;
    }
    // "(x-2)(x-3)=0，所以 x=2 或 x=3": the conclusion is what follows the last "so"
    if let Some(k) = toks
        .iter()
        .rposition(|t| matches!(t, Tok::Word(w) if is_conclusion(w)))
        && k > 0
        && toks[k + 1..]
            .iter()
            .any(|t| matches!(t, Tok::Num(_) | Tok::Ident(_)))
    {
        toks.drain(..k);
    }
    let mut items = Vec::new();
    for part in split_top(&toks, |t| matches!(t, Tok::Sep | Tok::Comma)) {
        if let Some(n) = item(part) {
            items.push(n);
        }
    }
    match items.len() {
        0 => {
            let words: Vec<&str> = toks
                .iter()
                .filter_map(|t| {
                    if let Tok::Word(w) = t {
                        Some(w.as_str())
                    } else {
                        None
                    }
                })
                .collect();
            (!words.is_empty()).then(|| Node::Text(words.join(" ")))
        }
        1 => items.pop(),
        _ => Some(Node::List(items)),
    }
}

pub(super) fn split_top(toks: &[Tok], is_sep: impl Fn(&Tok) -> bool) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (k, t) in toks.iter().enumerate() {
        match t {
            Tok::Open(_) => depth += 1,
            Tok::Close(_) => depth -= 1,
            Tok::Op('|') => {}
            _ => {}
        }
        if depth <= 0 && is_sep(t) {
            parts.push(&toks[start..k]);
            start = k + 1;
            depth = 0;
        }
    }
    parts.push(&toks[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// One answer item: words around it are its label; the math in it is parsed.
fn item(toks: &[Tok]) -> Option<Node> {
    let mut label = String::new();
    let mut segments: Vec<Vec<Tok>> = vec![Vec::new()];
    let mut depth = 0i32;
    for t in toks {
        match t {
            Tok::Open(_) => depth += 1,
            Tok::Close(_) => depth -= 1,
            _ => {}
        }
        match t {
            // a word inside brackets (`{35 cm, 4}`) is a unit the parser skips, not a label
            Tok::Word(w) if depth <= 0 => {
                label.push_str(w);
                if !segments.last().is_some_and(Vec::is_empty) {
                    segments.push(Vec::new());
                }
            }
            other => segments.last_mut().expect("segments").push(other.clone()),
        }
    }
    // words between stretches of math: the last stretch is the answer
    let math = segments.into_iter().rev().find(|s| {
        s.iter().any(|t| {
            matches!(
                t,
                Tok::Num(_)
                    | Tok::Ident(_)
                    | Tok::Op('π')
                    | Tok::Op('∞')
                    | Tok::Func(_)
                    | Tok::Cmd(_)
            )
        })
    })?;
    let node = relation::relation(&math)?;
    let label = clean_label(&label);
    Some(if label.is_empty() {
        node
    } else {
        Node::Labelled(label, Box::new(node))
    })
}

/// Label words without filler, so `极大值点为` and `极大值` match.
pub(crate) fn clean_label(s: &str) -> String {
    let mut t: String = s
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    for filler in [
        "所以", "因此", "故", "则", "函数", "取得", "处", "在", "的", "为", "是", "时", "点", "得",
        "有", "解", "答案", "最终",
    ] {
        t = t.replace(filler, "");
    }
    t
}

pub(super) struct Parser<'a> {
    t: &'a [Tok],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn new(t: &'a [Tok]) -> Self {
        Parser { t, i: 0, depth: 0 }
    }

    /// The whole token list as one expression; trailing junk (units) is ignored.
    pub(super) fn whole(mut self) -> Option<Node> {
        let n = self.expr()?;
        if self.peek() == Some(&Tok::Op(':')) {
            // 3:2, 12:00, 1:2:3
            let mut parts = vec![n];
            while self.eat(&Tok::Op(':')) {
                parts.push(self.expr()?);
            }
            return Some(Node::Ratio(parts));
        }
        Some(n)
    }

    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }

    fn bump(&mut self) -> Option<&Tok> {
        let t = self.t.get(self.i);
        self.i += 1;
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn expr(&mut self) -> Option<Node> {
        self.enter()?;
        let mut terms = vec![self.term()?];
        loop {
            if self.eat(&Tok::Op('+')) {
                terms.push(self.term()?);
            } else if self.eat(&Tok::Op('-')) {
                terms.push(Node::Neg(Box::new(self.term()?)));
            } else if self.eat(&Tok::Op('±')) {
                let rhs = self.term()?;
                let lhs = if terms.len() == 1 {
                    terms.pop()?
                } else {
                    Node::Add(std::mem::take(&mut terms))
                };
                terms = vec![Node::PlusMinus(Box::new(lhs), Box::new(rhs))];
            } else {
                break;
            }
        }
        self.depth -= 1;
        Some(if terms.len() == 1 {
            terms.pop()?
        } else {
            Node::Add(terms)
        })
    }

    fn starts_primary(&self) -> bool {
        matches!(
            self.peek(),
            Some(
                Tok::Num(_)
                    | Tok::Ident(_)
                    | Tok::Func(_)
                    | Tok::Cmd(_)
                    | Tok::Open('(' | '{' | '[' | '⦃' | '⟦')
                    | Tok::Op('π' | '√' | '∞')
            )
        )
    }

    fn term(&mut self) -> Option<Node> {
        let mut factors = vec![self.unary()?];
        loop {
            if self.eat(&Tok::Op('*')) {
                factors.push(self.unary()?);
            } else if self.eat(&Tok::Op('/')) {
                let d = self.unary()?;
                let n = if factors.len() == 1 {
                    factors.pop()?
                } else {
                    Node::Mul(std::mem::take(&mut factors))
                };
                factors = vec![Node::Div(Box::new(n), Box::new(d))];
            } else if self.starts_primary() && !matches!(self.peek(), Some(Tok::Open('['))) {
                // implicit product: 2x, 2\pi, x(x+1); a mixed number 1\frac{1}{2} is a sum
                let next = self.unary()?;
                let mixed = matches!((factors.last(), &next), (Some(Node::Num(_, None)), Node::Div(a, b)) if matches!((&**a, &**b), (Node::Num(_, None), Node::Num(_, None))) && factors.len() == 1)
                    && self
                        .t
                        .get(self.i.wrapping_sub(1))
                        .is_some_and(|t| matches!(t, Tok::Close('}')));
                if mixed {
                    let whole = factors.pop()?;
                    factors.push(Node::Add(vec![whole, next]));
                } else {
                    factors.push(next);
                }
            } else {
                break;
            }
        }
        Some(if factors.len() == 1 {
            factors.pop()?
        } else {
            Node::Mul(factors)
        })
    }

    fn unary(&mut self) -> Option<Node> {
        self.enter()?;
        let r = if self.eat(&Tok::Op('-')) {
            Some(Node::Neg(Box::new(self.unary()?)))
        } else if self.eat(&Tok::Op('+')) {
            self.unary()
        } else if self.eat(&Tok::Op('±')) {
            let v = self.unary()?;
            Some(Node::PlusMinus(
                Box::new(Node::Num(BigRational::zero(), None)),
                Box::new(v),
            ))
        } else {
            self.power()
        };
        self.depth -= 1;
        r
    }

    fn power(&mut self) -> Option<Node> {
        let base = self.postfix()?;
        if self.eat(&Tok::Op('^')) {
            let exp = if self.peek() == Some(&Tok::Op('-')) {
                self.unary()?
            } else {
                self.power_operand()?
            };
            let p = Node::Pow(Box::new(base), Box::new(exp));
            return Some(self.postfix_ops(p));
        }
        Some(base)
    }

    fn power_operand(&mut self) -> Option<Node> {
        self.enter()?;
        let r = self.power();
        self.depth -= 1;
        r
    }

    fn postfix(&mut self) -> Option<Node> {
        let p = self.primary()?;
        Some(self.postfix_ops(p))
    }

    fn postfix_ops(&mut self, mut p: Node) -> Node {
        loop {
            match self.peek() {
                Some(Tok::Op('!')) => {
                    self.i += 1;
                    p = Node::Fact(Box::new(p));
                }
                Some(Tok::Op('%')) => {
                    self.i += 1;
                    p = Node::Percent(Box::new(p));
                }
                Some(Tok::Op('°')) => {
                    self.i += 1;
                    p = Node::Deg(Box::new(p));
                }
                Some(Tok::Word(_)) => self.i += 1,
                _ => return p,
            }
        }
    }

    /// `{…}` as a LaTeX group.
    fn group(&mut self) -> Option<Node> {
        if self.eat(&Tok::Open('{')) {
            let n = self.expr()?;
            self.eat(&Tok::Close('}'));
            Some(n)
        } else {
            // \frac12: single tokens (the lexer split the digits)
            match self.bump()?.clone() {
                Tok::Num(d) => num(&d),
                Tok::Ident(v) => Some(Node::Var(v)),
                Tok::Op('π') => Some(Node::Pi),
                _ => None,
            }
        }
    }

    fn primary(&mut self) -> Option<Node> {
        self.enter()?;
        let r = self.primary_inner();
        self.depth -= 1;
        r
    }

    fn primary_inner(&mut self) -> Option<Node> {
        let tok = self.bump()?.clone();
        match tok {
            Tok::Num(d) => num(&d),
            Tok::Ident(v) => {
                let mut name = v;
                if self.eat(&Tok::Op('_')) {
                    let sub = match self.bump()?.clone() {
                        Tok::Num(d) => d,
                        Tok::Ident(s) => s,
                        Tok::Open('{') => {
                            let mut s = String::new();
                            while let Some(t) = self.bump() {
                                match t {
                                    Tok::Close('}') => break,
                                    Tok::Num(d) | Tok::Ident(d) => s.push_str(d),
                                    _ => {}
                                }
                            }
                            s
                        }
                        _ => String::new(),
                    };
                    name = format!("{name}_{sub}");
                }
                Some(if name == "e" {
                    Node::E
                } else {
                    Node::Var(name)
                })
            }
            Tok::Op('π') => Some(Node::Pi),
            Tok::Op('∞') => Some(Node::Inf),
            Tok::Op('√') => {
                let a = self.power()?;
                Some(Node::Func("sqrt".into(), Box::new(a)))
            }
            Tok::Func(f) => {
                if f == "sqrt" && self.eat(&Tok::Open('[')) {
                    // \sqrt[n]{x} = x^(1/n)
                    let n = self.expr()?;
                    self.eat(&Tok::Close(']'));
                    let x = self.group()?;
                    return Some(Node::Pow(
                        Box::new(x),
                        Box::new(Node::Div(
                            Box::new(Node::Num(BigRational::one(), None)),
                            Box::new(n),
                        )),
                    ));
                }
                // \log_2 16 = ln 16 / ln 2
                let base = if f == "log" && self.eat(&Tok::Op('_')) {
                    Some(self.power_operand()?)
                } else {
                    None
                };
                // sin^2 x
                let mut pow = None;
                if self.eat(&Tok::Op('^')) {
                    pow = Some(self.power_operand()?);
                }
                let arg = if matches!(self.peek(), Some(Tok::Open('(' | '{'))) {
                    self.primary()?
                } else {
                    self.power()?
                };
                let f = match base {
                    Some(b) => Node::Div(
                        Box::new(Node::Func("ln".into(), Box::new(arg))),
                        Box::new(Node::Func("ln".into(), Box::new(b))),
                    ),
                    None => Node::Func(f, Box::new(arg)),
                };
                Some(match pow {
                    Some(p) => Node::Pow(Box::new(f), Box::new(p)),
                    None => f,
                })
            }
            Tok::Cmd(c) if c == "sum" || c == "prod" => {
                self.big(if c == "sum" { 'Σ' } else { 'Π' })
            }
            Tok::Open('⟦') => self.matrix(),
            Tok::Cmd(c) if c == "frac" => {
                let a = self.group()?;
                let b = self.group()?;
                Some(Node::Div(Box::new(a), Box::new(b)))
            }
            Tok::Cmd(_) => {
                let a = self.group()?;
                let b = self.group()?;
                Some(Node::Func(
                    "binom".into(),
                    Box::new(Node::Tuple(vec![a, b])),
                ))
            }
            Tok::Op('|') => {
                let a = self.expr()?;
                self.eat(&Tok::Op('|'));
                Some(Node::Func("abs".into(), Box::new(a)))
            }
            Tok::Open(open) => {
                let mut parts = vec![self.expr()?];
                let close;
                loop {
                    match self.bump() {
                        Some(Tok::Comma) | Some(Tok::Sep) => parts.push(self.expr()?),
                        Some(Tok::Close(c)) => {
                            close = *c;
                            break;
                        }
                        Some(_) => {}
                        None => {
                            close = ' ';
                            break;
                        }
                    }
                }
                Some(bracketed(open, parts, close))
            }
            _ => None,
        }
    }
}

impl Parser<'_> {
    /// `\sum_{k=1}^{n} body`: the body is one term (`\sum_{k=1}^{n} k^2 + 1` adds 1 once).
    /// Without both bounds the sum is not read (the answer is refused, never half-compared).
    fn big(&mut self, kind: char) -> Option<Node> {
        if !self.eat(&Tok::Op('_')) {
            return None;
        }
        let braced = self.eat(&Tok::Open('{'));
        let Some(Tok::Ident(var)) = self.bump().cloned() else {
            return None;
        };
        if !self.eat(&Tok::Op('=')) {
            return None;
        }
        let lo = if braced {
            let lo = self.expr()?;
            if !self.eat(&Tok::Close('}')) {
                return None;
            }
            lo
        } else {
            self.power_operand()?
        };
        if !self.eat(&Tok::Op('^')) {
            return None;
        }
        let hi = self.power_operand()?;
        let body = self.term()?;
        Some(Node::Big(
            kind,
            var,
            Box::new(lo),
            Box::new(hi),
            Box::new(body),
        ))
    }

    /// The rows of a matrix after its opening `⟦` (see `latex::environments`).
    fn matrix(&mut self) -> Option<Node> {
        let mut rows: Vec<Vec<Node>> = vec![Vec::new()];
        loop {
            if self.eat(&Tok::Close('⟧')) {
                break;
            }
            let cell = self.expr()?;
            rows.last_mut()?.push(cell);
            match self.bump()? {
                Tok::Op('¦') => {}
                Tok::Op('⁋') => {
                    if self.peek() == Some(&Tok::Close('⟧')) {
                        continue;
                    }
                    rows.push(Vec::new());
                }
                Tok::Close('⟧') => break,
                _ => return None,
            }
        }
        rows.retain(|r| !r.is_empty());
        let width = rows.first()?.len();
        rows.iter()
            .all(|r| r.len() == width)
            .then_some(Node::Matrix(rows))
    }
}

fn bracketed(open: char, mut parts: Vec<Node>, close: char) -> Node {
    match (open, parts.len()) {
        ('⦃', _) => Node::Set(parts),
        ('{', 1) | ('(', 1) => parts.pop().expect("one part"),
        ('{', _) => Node::Set(parts),
        ('[', 2) | ('(', 2) if close != ')' || open != '(' => {
            let hi = parts.pop().expect("two parts");
            let lo = parts.pop().expect("two parts");
            Node::Interval(open == '[', Box::new(lo), Box::new(hi), close == ']')
        }
        ('[', 1) => parts.pop().expect("one part"),
        _ => Node::Tuple(parts),
    }
}

/// A decimal literal as an exact rational, remembering its decimal places.
pub(crate) fn num(d: &str) -> Option<Node> {
    let (mant, exp) = match d.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (d, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{int}{frac}");
    let n: BigInt = digits.parse().ok()?;
    let den = BigInt::from(10u32).pow(frac.len() as u32);
    let ten = BigRational::from_integer(BigInt::from(10u32));
    let scale = if exp >= 0 {
        num_traits::pow(ten, exp as usize)
    } else {
        num_traits::pow(ten, exp.unsigned_abs() as usize).recip()
    };
    let places = (!frac.is_empty() && exp == 0).then_some(frac.len() as u32);
    Some(Node::Num(BigRational::new(n, den) * scale, places))
}
