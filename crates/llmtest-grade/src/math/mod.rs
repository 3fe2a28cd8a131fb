//! The `math` assertion: the final answer of a worked solution, compared by meaning.
//!
//! ```yaml
//! - type: math
//!   value: "\\frac{1}{2}"   # the gold answer, LaTeX or plain ("x=2 或 x=3", "(1, 2]", 142)
//!   decimals: true          # optional; default true
//! ```
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `value` | required | the gold answer: a number, or a string in LaTeX or plain text |
//! | `decimals` | `true` | accept a decimal that equals the exact value at the precision shown (`0.1667` for 1/6; at least three significant digits) |
//!
//! **Extraction** (see `extract.rs`): the last `\boxed{}`/`\fbox{}`, else the text after the last
//! `最终答案`/`答案是`/`答案：`, else after `the answer is`, else after `Final answer:`/`Answer:`,
//! else after GSM8K's `####`, else a display block (`\[ … \]`, `$$ … $$`) with nothing
//! mathematical after it, else the last line's last sentence with math in it (the last
//! stretch of math in it: `She has 18 apples left.` gives 18). Boxes joined by a short
//! connector on one line are one answer (`\boxed{(3,3)} for part (a) and \boxed{(1,1)}`); a
//! `Final Answer:` after the last box wins over scratch boxes. A gold written as a solution
//! gives its answer (every distinct box, or the marked answer); a gold that is prose with no
//! final answer marked, or that holds a control character (`\t` from a double-quoted YAML
//! `"\text{…}"`), is refused at load.
//!
//! **Parsing**: integers, decimals, digit grouping (`1,234`, `1{,}234`, `1,\!234`, SI spaces
//! `1 234`; inside brackets a single group is a separator: `(12,102)` is a pair), `\frac \dfrac
//! \tfrac` (and `\frac12`), mixed numbers (`1\frac{1}{2}`), `\sqrt` and `\sqrt[n]`, powers,
//! `\cdot \times`, implicit products (`2x`, `2\pi`), `\pi`, `e` (`\mathrm{e}`), `\infty`,
//! functions (`\sin`, `\ln`, …), `n!`, `\binom`, `\sum`/`\prod` with both bounds (evaluated when
//! the bounds are numbers), `%`, degrees (`30^\circ` reads as 30), `\left \right`, matrices
//! (`pmatrix`, `bmatrix`, `array`, …; sums and products worked out), ratios and times (`3:2`,
//! `12:00`; `1:2` is also 1/2 against a number), set-builder sets (`\{x \mid x > 2\}`), Chinese
//! numerals (`三分之一`, `负二`, `一点五`, `百分之四十`, read by `number`'s reader; not inside
//! words: `三角形`), `\text{}` and trailing units dropped (`1,000.99m²`), remarks and asides in
//! parentheses (`x=0 (a local maximum)`, `(约 0.67)`) dropped. A text answer (`\text{Evelyn}`, `\text{odd}`) is compared
//! as normalized text. An environment that is not read (`cases`, `vmatrix`) makes the answer
//! unreadable rather than half-read.
//!
//! **Equivalence**: exact big-rational arithmetic when both sides are rational; otherwise
//! floating point (relative 1e-9), and for expressions in variables, agreement at eight
//! fixed pseudo-random points (`x+x` ≡ `2x`, `x^2-2x+1` ≡ `(x-1)^2`). `25%` ≡ `0.25`, and a
//! percentage also matches its bare number (`25%` ≡ `25`).
//!
//! **Structures**: answers separated by `,` `;` `或` `和` `and` `or` are an unordered
//! collection (`x=2 或 x=3` ≡ `\{2,3\}` ≡ `x_1=3, x_2=2`; hedging with extra answers fails);
//! `a \pm b` is two answers; intervals with open/closed ends and unions (`(-\infty, 1] \cup (2,
//! \infty)`), inequalities in one variable as intervals (`x > 2` ≡ `(2, \infty)`, `-x > -1` ≡
//! `x < 1`, `1 \le |z| \le 2` ≡ `[-2, -1] \cup [1, 2]`, `x \in [a, b]` ≡ `[a, b]`); other
//! relations (`x \neq 3`, `f(2) < f(1) < f(4)`) are compared side by side; tuples/points are
//! ordered (`(p,q)=(3,2)` ≡ `(3, 2)` ≡ `p=3, q=2`); an equation `y = 2x+1` matches `2x+1`, and two
//! equations match when they describe the same relation; a named quantity's value matches the
//! value (`a+b = 6`, `\sin A = 3/5` ≡ the number; not `x + 1 = 3`); a column vector matches the
//! tuple of its entries; `a \approx b` keeps the exact side;
//! labelled answers (`极大值点 x=0，极小值点 x=2`) are matched by label.

mod equiv;
mod eval;
mod extract;
mod latex;
mod lex;
mod parse;
mod relation;
mod show;

use show::show;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use llmtest_spec::CheckError;

use crate::grader::{FnFactory, Grade, Grader, GraderContext, GraderFactory, Sample, parse_params};
use parse::Node;

pub(crate) fn factory() -> Arc<dyn GraderFactory> {
    Arc::new(FnFactory::new(
        "math",
        |p: &Map<String, Value>, _: &GraderContext| {
            let g = MathGrader::from_params(p)?;
            Ok(Arc::new(g) as Arc<dyn Grader>)
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    value: Gold,
    #[serde(default = "yes")]
    decimals: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Gold {
    N(serde_json::Number),
    S(String),
}

/// A `math` grader built from its parameters.
pub struct MathGrader {
    gold: Node,
    gold_text: String,
    opts: equiv::Opts,
}

/// The result of comparing one answer, for tools that want more than a [`Grade`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MathVerdict {
    pub pass: bool,
    /// The extracted final answer as written.
    pub extracted: String,
    /// Its canonical form (`1/2`, `{2, 3}`), or `None` when nothing could be parsed.
    pub canonical: Option<String>,
}

impl MathGrader {
    /// Builds the grader from an assertion's parameters (see the module docs).
    pub fn from_params(p: &Map<String, Value>) -> Result<MathGrader, CheckError> {
        let Params { value, decimals } = parse_params(p)?;
        let text = match value {
            Gold::N(n) => n.to_string(),
            Gold::S(s) => s,
        };
        MathGrader::new(&text, decimals)
    }

    /// A grader for one gold answer.
    pub fn new(gold: &str, decimals: bool) -> Result<MathGrader, CheckError> {
        let text = gold.trim();
        if let Some(c) = gold
            .chars()
            .find(|c| matches!(c, '\t' | '\u{7}' | '\u{8}' | '\u{b}' | '\u{c}'))
        {
            return Err(CheckError::new(format!(
                "the gold answer {:?} holds the control character {c:?}, where a LaTeX command was meant",
                short(text)
            ))
            .with_hint("in a double-quoted YAML or JSON string `\\t` is a tab and `\\f` a form feed: write `'\\text{…}'` in single quotes, or double the backslash"));
        }
        // a gold written as a solution (`\boxed{…}`, `#### 18`, `The answer is 5`) is reduced
        // to its answer; one with no final-answer marker is refused, not read as a product of
        // the letters in its words
        let (inner, source) = extract::gold_answer(text);
        let src = if source != extract::Source::LastLine {
            inner
        } else if latex::sole_text(text).is_none() && extract::is_worked_solution(text) {
            return Err(CheckError::new(format!(
                "the gold answer {:?} reads as a worked solution with no final answer marked",
                short(text)
            ))
            .with_hint("give the answer alone (`\\frac{1}{2}`), or mark it: `\\boxed{…}`, `The answer is …`, `#### …`"));
        } else {
            text.to_owned()
        };
        let node = parse::parse(&src).ok_or_else(|| {
            CheckError::new(format!("cannot read the gold answer {text:?}")).with_hint(
                "write it in LaTeX or plain text: `\\frac{1}{2}`, `x=2 或 x=3`, `(1, 2]`",
            )
        })?;
        Ok(MathGrader {
            gold: node,
            gold_text: text.to_owned(),
            opts: equiv::Opts { decimals },
        })
    }

    /// Judges one answer (reasoning already removed).
    pub fn verdict(&self, answer: &str) -> MathVerdict {
        let (text, _) = extract::final_answer(answer);
        let node = parse::parse(&text);
        let pass = node
            .as_ref()
            .is_some_and(|n| equiv::equivalent(&self.gold, n, self.opts));
        MathVerdict {
            pass,
            canonical: node.map(|n| short(&show(&self.tidy(n)))),
            extracted: text,
        }
    }

    /// The answer as shown in messages and snapshots: labels only where the gold has them
    /// (`The roots are 2 and 3` → `2, 3`), a worked computation reduced to its result.
    fn tidy(&self, n: Node) -> Node {
        fn labelled(n: &Node) -> bool {
            match n {
                Node::Labelled(..) => true,
                Node::List(v) | Node::Set(v) => v.iter().any(labelled),
                _ => false,
            }
        }
        fn strip(n: Node, keep_labels: bool) -> Node {
            match n {
                Node::Labelled(l, x) if keep_labels => {
                    Node::Labelled(l, Box::new(strip(*x, keep_labels)))
                }
                Node::Labelled(_, x) => strip(*x, keep_labels),
                Node::List(v) => Node::List(v.into_iter().map(|x| strip(x, keep_labels)).collect()),
                Node::Eq(l, r) if !has_vars(&l) && !has_vars(&r) => *r,
                other => other,
            }
        }
        fn has_vars(n: &Node) -> bool {
            let mut vs = Vec::new();
            eval::vars(n, &mut vs);
            !vs.is_empty()
        }
        strip(n, labelled(&self.gold))
    }

    /// Grades an answer (reasoning already removed).
    pub fn grade_answer(&self, answer: &str) -> Grade {
        let (text, source) = extract::final_answer(answer);
        let node = parse::parse(&text);
        let expected = format!(
            "{} (= {})",
            short(&self.gold_text),
            short(&show(&self.gold))
        );
        let Some(node) = node else {
            let found = if text.trim().is_empty() {
                format!("no final answer in {}", crate::text::excerpt(answer))
            } else {
                format!(
                    "{:?} {} (not readable as math)",
                    short(&text),
                    source.describe()
                )
            };
            return Grade::binary(false, expected, found);
        };
        let pass = equiv::equivalent(&self.gold, &node, self.opts);
        let canon = short(&show(&self.tidy(node)));
        let found = format!(
            "{:?} {} = {}{}",
            short(&text),
            source.describe(),
            canon,
            if pass {
                String::new()
            } else {
                format!(" ≢ {}", short(&show(&self.gold)))
            }
        );
        Grade::binary(pass, expected, found).with_extracted(canon)
    }
}

impl Grader for MathGrader {
    fn grade(&self, sample: &Sample<'_>) -> Grade {
        self.grade_answer(sample.answer)
    }
}

/// Messages and snapshots stay short whatever the answer.
fn short(s: &str) -> String {
    const MAX: usize = 160;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_forms;
