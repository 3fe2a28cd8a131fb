//! Finding the final answer in a worked solution.
//!
//! In order, the first that is present wins:
//! 1. the last `\boxed{…}` / `\fbox{…}` (nested braces kept);
//! 2. the last `最终答案` / `答案是` / `答案为` / `答案：` / `答：`;
//! 3. the last `the answer is` / `the final answer is`;
//! 4. the last `Final answer:` / `Answer:`;
//! 5. the last GSM8K `####`;
//! 6. fallback: the last line (its last sentence that has a digit or math in it); the
//!    parser then keeps the last stretch of math in it, so `She has 18 apples left.` gives 18.

/// Where the answer was found, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Boxed,
    Marker,
    Hashes,
    LastLine,
}

impl Source {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Source::Boxed => "from \\boxed{}",
            Source::Marker => "after the answer marker",
            Source::Hashes => "after ####",
            Source::LastLine => "from the last line",
        }
    }
}

const CN_MARKERS: &[&str] = &[
    "最终答案是",
    "最终答案为",
    "最终答案",
    "答案是",
    "答案为",
    "答案应为",
    "答案:",
    "答案",
    "答:",
];
const EN_MARKERS: &[&str] = &["the final answer is", "the answer is", "answer is"];
const LABEL_MARKERS: &[&str] = &["final answer:", "final answer", "answer:"];

/// The final answer's text and where it came from.
pub(crate) fn final_answer(answer: &str) -> (String, Source) {
    // full-width forms folded first, so `答案：` and `答案:` are one marker
    let folded = crate::number::fold(answer);
    let answer = folded.as_str();
    let lower = answer.to_lowercase();
    if let Some(b) = boxed_answer(answer) {
        // scratch boxes, then `Final Answer: 7` after the last of them: the marker wins
        let last_end = boxed_before(answer, answer.len()).map_or(0, |(_, _, e)| e);
        if let (Some(tail), Some(lower_tail)) = (answer.get(last_end..), lower.get(last_end..)) {
            for group in [CN_MARKERS, EN_MARKERS, LABEL_MARKERS] {
                if let Some(t) = after_last_marker(tail, lower_tail, group) {
                    return (t, Source::Marker);
                }
            }
        }
        return (b, Source::Boxed);
    }
    // lowercasing keeps byte offsets only for ASCII; map through char indices to be safe
    for group in [CN_MARKERS, EN_MARKERS, LABEL_MARKERS] {
        if let Some(t) = after_last_marker(answer, &lower, group) {
            return (t, Source::Marker);
        }
    }
    if let Some(i) = answer.rfind("####") {
        let t = clip(&answer[i + 4..]);
        if !t.is_empty() {
            return (t, Source::Hashes);
        }
    }
    if let Some(d) = last_display(answer) {
        return (d, Source::LastLine);
    }
    (last_line(answer), Source::LastLine)
}

/// A gold answer written as a solution: every distinct box (`\boxed{2}, \boxed{3}`, or the
/// same answer boxed twice), else the marked answer as for a model's answer.
pub(crate) fn gold_answer(gold: &str) -> (String, Source) {
    let folded = crate::number::fold(gold);
    let mut boxes: Vec<String> = Vec::new();
    let mut end = folded.len();
    let mut next_start = None;
    while let Some((start, body, after)) = boxed_before(&folded, end) {
        // boxes joined by symbols or a connector are one answer; words between them
        // (`\boxed{1} no no no \boxed{2}`) end it
        if let Some(ns) = next_start {
            let between = folded.get(after..ns).unwrap_or("x");
            if !between.chars().all(|c| !c.is_alphabetic()) && !joins(between) {
                break;
            }
        }
        if !boxes.contains(&body) {
            boxes.push(body);
        }
        next_start = Some(start);
        end = start;
        if boxes.len() >= 16 {
            break;
        }
    }
    if boxes.is_empty() {
        return final_answer(gold);
    }
    boxes.reverse();
    (boxes.join(", "), Source::Boxed)
}

/// The content of a display block (`\[ … \]`, `$$ … $$`) when nothing mathematical follows it
/// (`So the area is ⏎ \[ ⏎ \frac{9}{2} ⏎ \] ⏎ square units.`).
fn last_display(s: &str) -> Option<String> {
    let (open, close) = [("\\[", "\\]"), ("$$", "$$")]
        .into_iter()
        .filter_map(|(o, c)| {
            let end = s.rfind(c)?;
            let start = s[..end].rfind(o)?;
            Some((start + o.len(), end))
        })
        .max_by_key(|(_, end)| *end)?;
    let raw = s.get(open..close)?;
    let body = raw.trim();
    let tail = &s[close..];
    let tail = tail.get(2..).unwrap_or("");
    let math_after = tail
        .chars()
        .any(|c| c.is_ascii_digit() || c == '\\' || c == '$');
    (!body.is_empty() && raw.contains('\n') && !math_after).then(|| body.to_owned())
}

fn after_last_marker(answer: &str, lower: &str, markers: &[&str]) -> Option<String> {
    if lower.len() != answer.len() {
        // non-ASCII case folding changed lengths: search the original (markers are
        // lowercase ASCII or Chinese, so only the English ones can miss)
        return markers
            .iter()
            .filter_map(|m| answer.rfind(m).map(|i| (i, m)))
            .max_by_key(|(i, _)| *i)
            .and_then(|(i, m)| {
                let t = clip(&answer[i + m.len()..]);
                (!t.is_empty()).then_some(t)
            });
    }
    let (i, m) = markers
        .iter()
        .filter_map(|m| lower.rfind(m).map(|i| (i, m)))
        .max_by_key(|(i, m)| (*i, m.len()))?;
    let t = clip(&answer[i + m.len()..]);
    (!t.is_empty()).then_some(t)
}

/// The text after a marker, up to the end of its line and sentence.
fn clip(s: &str) -> String {
    let s = s.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, ':' | '：' | '*' | '是' | '为' | '=')
    });
    let s = s.strip_prefix("is ").unwrap_or(s);
    let mut line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned();
    if let Some(b) = last_boxed(&line) {
        return b;
    }
    if let Some(i) = line.find('。') {
        line.truncate(i);
    }
    // a sentence ends at ". " (not a decimal point)
    if let Some(i) = line.find(". ") {
        line.truncate(i);
    }
    trim_end(&line)
}

fn trim_end(s: &str) -> String {
    s.trim()
        .trim_end_matches(['.', '。', '*', '！', ';', '；', ',', '，'])
        .trim()
        .to_owned()
}

/// The last boxed answer; boxes on the same line joined by a short connector (`\boxed{x=2}
/// 和 \boxed{x=3}`) are one answer.
fn boxed_answer(s: &str) -> Option<String> {
    let mut parts = vec![];
    let mut end = s.len();
    while let Some((start, body, after)) = boxed_before(s, end) {
        if let Some((_, next_start)) = parts
            .last()
            .map(|(b, st): &(String, usize)| (b.clone(), *st))
        {
            // a box inside another one: keep the inner, later one only
            let Some(between) = s.get(after..next_start) else {
                break;
            };
            if !joins(between) {
                break;
            }
        }
        parts.push((body, start));
        if parts.len() >= 16 {
            break;
        }
        end = start;
    }
    if parts.is_empty() {
        return None;
    }
    parts.reverse();
    Some(
        parts
            .into_iter()
            .map(|(b, _)| b)
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Text between two boxes that makes them one answer: short, on one line, with a connector.
fn joins(between: &str) -> bool {
    let lower = between.to_lowercase();
    // `\boxed{9} is wrong; the answer is \boxed{8}`: a correction, not a second answer
    let corrects = [
        "answer", "wrong", "actually", "instead", "答案", "错", "应为", "应该",
    ]
    .iter()
    .any(|w| lower.contains(w));
    !corrects
        && between.chars().count() <= 48
        && !between.contains('\n')
        && ["和", "或", ",", "，", "、", "and", "or", ";"]
            .iter()
            .any(|w| between.contains(w))
}

/// The last box starting before `end`: (start, content, end of the box).
fn boxed_before(s: &str, end: usize) -> Option<(usize, String, usize)> {
    let hay = &s[..end];
    let i = hay
        .rfind("\\boxed")
        .into_iter()
        .chain(hay.rfind("\\fbox"))
        .max()?;
    let (body, len) = boxed_at(&s[i..])?;
    Some((i, body, i + len))
}

/// The content of the last `\boxed{…}` or `\fbox{…}`.
pub(crate) fn last_boxed(s: &str) -> Option<String> {
    let i = s
        .rfind("\\boxed")
        .into_iter()
        .chain(s.rfind("\\fbox"))
        .max()?;
    boxed_at(&s[i..]).map(|(b, _)| b)
}

/// The box at the start of `rest`: (content, bytes the box takes).
fn boxed_at(rest: &str) -> Option<(String, usize)> {
    let total = rest.len();
    let rest = rest
        .strip_prefix("\\boxed")
        .or_else(|| rest.strip_prefix("\\fbox"))?;
    let rest = rest.trim_start();
    let offset = total - rest.len();
    if let Some(body) = rest.strip_prefix('{') {
        let mut depth = 1usize;
        let mut prev = ' ';
        for (k, ch) in body.char_indices() {
            match ch {
                '{' if prev != '\\' => depth += 1,
                '}' if prev != '\\' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some((body[..k].trim().to_owned(), offset + 1 + k + 1));
                    }
                }
                _ => {}
            }
            prev = ch;
        }
        Some((body.trim().to_owned(), total))
    } else {
        let t: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '$')
            .collect();
        let len = offset + t.len();
        (!t.is_empty()).then_some((t, len))
    }
}

/// Prose with no final-answer marker: eight or more words (three letters or more, LaTeX
/// command names not counted; three Chinese characters count as one word).
pub(crate) fn is_worked_solution(s: &str) -> bool {
    let c: Vec<char> = s.chars().collect();
    let mut words = 0usize;
    let mut cjk = 0usize;
    let mut i = 0;
    while i < c.len() {
        if c[i].is_ascii_alphabetic() {
            let start = i;
            while i < c.len() && c[i].is_ascii_alphabetic() {
                i += 1;
            }
            let command = start > 0 && c[start - 1] == '\\';
            if !command && i - start >= 3 {
                words += 1;
            }
            continue;
        }
        if ('\u{4E00}'..='\u{9FFF}').contains(&c[i]) {
            cjk += 1;
        }
        i += 1;
    }
    words + cjk / 3 >= 8
}

const MATH_WORDS: &[&str] = &[
    "pi", "oo", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "ln", "log", "exp", "abs",
    "binom", "inf", "infty",
];

fn last_line(s: &str) -> String {
    let Some(line) = s.lines().rev().find(|l| {
        l.chars()
            .any(|c| c.is_ascii_digit() || "\\πx√∞".contains(c))
    }) else {
        let last = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        // A sentence of prose with no math in it ("I am not sure which one.") states no
        // answer; reading its words as a product of variables would only confuse reports.
        // (names of constants and functions are math: `(pi, sqrt(pi))`)
        let words = last
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| w.chars().count() >= 2 && !MATH_WORDS.contains(w))
            .count();
        if words >= 4 {
            return String::new();
        }
        return trim_end(last);
    };
    // the last sentence with something mathematical in it
    let sentences: Vec<&str> = line
        .split(['。', '！', '？'])
        .flat_map(|p| p.split(". "))
        .collect();
    let pick = sentences
        .iter()
        .rev()
        .find(|p| p.chars().any(|c| c.is_ascii_digit() || "\\π√∞".contains(c)))
        .copied()
        .unwrap_or(line);
    trim_end(pick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_forms() {
        assert_eq!(
            final_answer("so \\boxed{\\dfrac{2}{4}} and \\boxed{\\frac{1}{2}}").0,
            "\\dfrac{2}{4}, \\frac{1}{2}"
        );
        assert_eq!(final_answer("\\boxed{1}\n\nthen \\boxed{2}").0, "2");
        assert_eq!(
            final_answer("\\boxed{x = 2} \\text{ 和 } \\boxed{x = 3}").0,
            "x = 2, x = 3"
        );
        assert_eq!(final_answer("\\boxed{\\{2, 3\\}}").0, "\\{2, 3\\}");
        assert_eq!(final_answer("x \\fbox{5}").0, "5");
        assert_eq!(final_answer("\\boxed 7 done").0, "7");
        assert_eq!(
            final_answer("计算得 5。\n答案：x=2 或 x=3。").0,
            "x=2 或 x=3"
        );
        assert_eq!(final_answer("最终答案是 142").0, "142");
        assert_eq!(final_answer("Thus the answer is 18. Nice.").0, "18");
        assert_eq!(final_answer("Final Answer: $1,234$").0, "1,234");
        assert_eq!(final_answer("答：共需要 8 天。").0, "共需要 8 天");
        assert_eq!(final_answer("blah\n#### 72").0, "72");
        assert_eq!(
            final_answer("She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = 18 dollars.").0,
            "She makes 9 * 2 = 18 dollars"
        );
        assert_eq!(final_answer("**Answer:** 3.5").0, "3.5");
        assert_eq!(final_answer("").0, "");
        assert_eq!(final_answer("I am a tiny test model.").0, "");
        assert_eq!(final_answer("\\boxed{unclosed").0, "unclosed");
        assert_eq!(final_answer("\\boxed{\\boxed{1}, \\boxed{2}}").0, "1, 2");
    }
}
