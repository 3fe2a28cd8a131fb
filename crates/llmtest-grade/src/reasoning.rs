//! Separating a reasoning model's thinking from its answer.
//!
//! Handles `<think>…</think>answer`, output with only the closing `</think>` (R1-distill
//! chat templates pre-fill the opening tag), several think blocks, `<thinking>` tags, and an
//! API's separate `reasoning_content` channel. A `<think>` that never closes means the model
//! ran out of tokens while thinking: that is reported, not graded as a wrong answer.

/// The answer and the reasoning, split.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Split {
    /// What is graded.
    pub answer: String,
    /// All reasoning text (API channel first, then inline blocks), if any.
    pub reasoning: Option<String>,
    /// The output ended inside a think block (or produced reasoning only, cut off by the
    /// token limit).
    pub unterminated: bool,
}

const TAGS: &[(&str, &str)] = &[("<think>", "</think>"), ("<thinking>", "</thinking>")];

/// Splits `raw` output. `api_reasoning` is the API's separate channel (vLLM/DeepSeek
/// `reasoning_content`); `truncated` is true when generation stopped at the token limit.
pub fn split_reasoning(raw: &str, api_reasoning: Option<&str>, truncated: bool) -> Split {
    let mut reasoning: Vec<String> = Vec::new();
    if let Some(r) = api_reasoning.filter(|r| !r.trim().is_empty()) {
        reasoning.push(r.trim().to_owned());
    }
    let mut answer = String::new();
    let mut unterminated = false;
    let mut rest = raw;

    // A leading lone closing tag: the opening one was pre-filled by the chat template.
    for (open, close) in TAGS {
        if let Some(ci) = rest.find(close) {
            let before = &rest[..ci];
            if !before.contains(open) {
                reasoning.push(before.trim().to_owned());
                rest = &rest[ci + close.len()..];
                break;
            }
        }
    }
    loop {
        let next = TAGS
            .iter()
            .filter_map(|(o, c)| rest.find(o).map(|i| (i, *o, *c)))
            .min_by_key(|(i, _, _)| *i);
        let Some((i, open, close)) = next else {
            answer.push_str(rest);
            break;
        };
        answer.push_str(&rest[..i]);
        let inner = &rest[i + open.len()..];
        match inner.find(close) {
            Some(ci) => {
                reasoning.push(inner[..ci].trim().to_owned());
                rest = &inner[ci + close.len()..];
            }
            None => {
                reasoning.push(inner.trim().to_owned());
                unterminated = true;
                break;
            }
        }
    }
    let had_tags =
        reasoning.len() > usize::from(api_reasoning.is_some_and(|r| !r.trim().is_empty()));
    // Without think tags the output is the answer exactly as produced: leading indentation
    // matters to code completions. With them, drop the blank lines the tags leave behind,
    // but keep the first line's indentation.
    let answer = if had_tags {
        strip_blank_edges(&answer)
    } else {
        answer
    };
    // Reasoning through the API channel and no answer at all, cut at the token limit: the
    // model was still thinking.
    if truncated && answer.is_empty() && !reasoning.is_empty() {
        unterminated = true;
    }
    reasoning.retain(|r| !r.is_empty());
    Split {
        answer,
        reasoning: if reasoning.is_empty() {
            None
        } else {
            Some(reasoning.join("\n\n"))
        },
        unterminated,
    }
}

fn strip_blank_edges(s: &str) -> String {
    let start = match s.find(|c: char| !c.is_whitespace()) {
        Some(i) => s[..i].rfind('\n').map_or(0, |nl| nl + 1),
        None => return String::new(),
    };
    s[start..].trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_output_is_all_answer_untouched() {
        let s = split_reasoning("    return x + 1\n", None, false);
        assert_eq!(
            s,
            Split {
                answer: "    return x + 1\n".into(),
                reasoning: None,
                unterminated: false
            }
        );
    }

    #[test]
    fn indentation_after_a_think_block_survives() {
        let s = split_reasoning("<think>plan</think>\n\n    return x + 1\n", None, false);
        assert_eq!(s.answer, "    return x + 1");
    }

    #[test]
    fn think_block_is_removed() {
        let s = split_reasoning(
            "<think>2023 was 53,529,941</think>\n\n58,159,881千元",
            None,
            false,
        );
        assert_eq!(s.answer, "58,159,881千元");
        assert_eq!(s.reasoning.as_deref(), Some("2023 was 53,529,941"));
        assert!(!s.unterminated);
    }

    #[test]
    fn prefilled_open_tag_only_closing_present() {
        let s = split_reasoning(
            "let me add the rows... 535亿\n</think>\n\n答案：581.6亿元",
            None,
            false,
        );
        assert_eq!(s.answer, "答案：581.6亿元");
        assert_eq!(s.reasoning.as_deref(), Some("let me add the rows... 535亿"));
    }

    #[test]
    fn unterminated_think_is_flagged() {
        let s = split_reasoning("<think>first, the revenue line is", None, true);
        assert!(s.unterminated);
        assert_eq!(s.answer, "");
        assert_eq!(s.reasoning.as_deref(), Some("first, the revenue line is"));
    }

    #[test]
    fn api_channel_counts_and_truncation_without_answer_is_unterminated() {
        let s = split_reasoning("", Some("thinking about 142"), true);
        assert!(s.unterminated);
        let s = split_reasoning("142", Some("thinking about 142"), false);
        assert_eq!(s.answer, "142");
        assert_eq!(s.reasoning.as_deref(), Some("thinking about 142"));
        assert!(!s.unterminated);
    }

    #[test]
    fn several_blocks_and_thinking_tag() {
        let s = split_reasoning("<think>a</think>x<thinking>b</thinking> y", None, false);
        assert_eq!(s.answer, "x y");
        assert_eq!(s.reasoning.as_deref(), Some("a\n\nb"));
    }
}
