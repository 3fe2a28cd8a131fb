//! Finding the code in an answer (reasoning is already removed by the runner).
//!
//! Policy, in order:
//! 1. **Fenced blocks** (```` ``` ```` or `~~~`, an unclosed last fence runs to the end of the
//!    answer). Candidates are the blocks tagged with the suite's language (`python`, `py`, …);
//!    if there are none, the untagged blocks; if there are none, every block. Among the
//!    candidates, those that define the function under test win; of those, the longest
//!    (the last one on a tie: models tend to end with their final version).
//! 2. **Bare code**: no fence at all. Leading prose lines before the first line that starts
//!    a top-level construct (`def`, `import`, `class`, … for Python) are dropped; an answer
//!    whose first line is indented is a function-body continuation and is kept verbatim.
//! 3. **Completion**: when the case has a code prompt (HumanEval's `prompt`), an extracted
//!    snippet that does not define the function is its body and is appended to the prompt
//!    (indented by four spaces if the model dedented it); a snippet that does define it
//!    (the model repeated the signature) replaces the prompt's definition and keeps what the
//!    prompt has before it (imports, helper functions).

use regex::Regex;

/// Code taken from an answer, and how it was found (for reports).
#[derive(Clone, Debug, PartialEq)]
pub struct Extracted {
    pub code: String,
    pub how: String,
}

/// The syntax facts extraction needs about a language.
#[derive(Clone, Debug)]
pub struct Syntax {
    /// Fence tags that name the language (lowercase).
    pub(crate) tags: Vec<String>,
    /// Prefixes of lines that start top-level code.
    pub(crate) starts: Vec<String>,
    /// Regex template defining a function: `{name}` is replaced by the escaped name.
    pub(crate) defines: String,
}

impl Syntax {
    /// The syntax of a language (`python`, `javascript`, `rust`; others only by fence tag),
    /// with extra fence tags.
    pub fn for_language(lang: &str, extra_tags: &[String]) -> Syntax {
        let (tags, starts, defines): (&[&str], &[&str], &str) = match lang {
            "python" => (
                &["python", "py", "python3", "py3"],
                &["def ", "async def ", "class ", "import ", "from ", "@", "#"],
                r"(?m)^[ \t]*(async[ \t]+)?def[ \t]+{name}[ \t]*\(",
            ),
            "javascript" => (
                &["javascript", "js", "node", "jsx", "mjs"],
                &[
                    "function ",
                    "async function ",
                    "const ",
                    "let ",
                    "var ",
                    "class ",
                    "import ",
                    "export ",
                    "module.exports",
                    "\"use strict\"",
                    "'use strict'",
                    "//",
                    "/*",
                ],
                r"(?m)(function[ \t]*\*?[ \t]*{name}[ \t]*\(|(const|let|var)[ \t]+{name}[ \t]*=|^[ \t]*{name}[ \t]*\()",
            ),
            "rust" => (
                &["rust", "rs"],
                &[
                    "fn ", "pub ", "use ", "struct ", "enum ", "impl ", "mod ", "const ",
                    "static ", "#[", "#!", "//", "trait ",
                ],
                r"(?m)fn[ \t]+{name}\b",
            ),
            _ => (&[], &[], r"(?m)\b{name}\b"),
        };
        let mut tags: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
        tags.push(lang.to_lowercase());
        tags.extend(extra_tags.iter().map(|t| t.to_lowercase()));
        Syntax {
            tags,
            starts: starts.iter().map(|s| s.to_string()).collect(),
            defines: defines.to_string(),
        }
    }

    pub(crate) fn defines_re(&self, name: &str) -> Option<Regex> {
        Regex::new(&self.defines.replace("{name}", &regex::escape(name))).ok()
    }
}

struct Block<'a> {
    tag: String,
    body: &'a str,
    closed: bool,
}

fn fenced_blocks(text: &str) -> Vec<Block<'_>> {
    let mut blocks = Vec::new();
    // (fence char, fence length, tag, byte offset where the body starts)
    let mut open: Option<(char, usize, String, usize)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let t = line.trim_end_matches(['\n', '\r']);
        let indent = t.len() - t.trim_start_matches(' ').len();
        if indent > 3 {
            continue;
        }
        let t = &t[indent..];
        let Some(c) = t.chars().next().filter(|c| *c == '`' || *c == '~') else {
            continue;
        };
        let n = t.chars().take_while(|x| *x == c).count();
        if n < 3 {
            continue;
        }
        let rest = &t[n..];
        match &open {
            Some((oc, on, tag, body_start)) => {
                if *oc == c && n >= *on && rest.trim().is_empty() {
                    blocks.push(Block {
                        tag: tag.clone(),
                        body: &text[*body_start..start],
                        closed: true,
                    });
                    open = None;
                }
            }
            None => {
                if c == '`' && rest.contains('`') {
                    continue; // inline code span, not a fence
                }
                let tag = rest
                    .trim()
                    .split(|ch: char| ch.is_whitespace() || ch == '{' || ch == ',')
                    .next()
                    .unwrap_or("")
                    .to_lowercase();
                open = Some((c, n, tag, pos));
            }
        }
    }
    if let Some((_, _, tag, body_start)) = open {
        blocks.push(Block {
            tag,
            body: &text[body_start.min(text.len())..],
            closed: false,
        });
    }
    blocks
}

/// Finds the code in `answer`. `func` is the function under test, if any.
pub fn extract(answer: &str, syntax: &Syntax, func: Option<&str>) -> Option<Extracted> {
    let blocks = fenced_blocks(answer);
    let defines = func.and_then(|f| syntax.defines_re(f));
    if !blocks.is_empty() {
        let total = blocks.len();
        let tagged: Vec<usize> = (0..total)
            .filter(|&i| syntax.tags.contains(&blocks[i].tag))
            .collect();
        let (pool, which) = if !tagged.is_empty() {
            (tagged, "tagged")
        } else {
            let untagged: Vec<usize> = (0..total).filter(|&i| blocks[i].tag.is_empty()).collect();
            if !untagged.is_empty() {
                (untagged, "untagged")
            } else {
                ((0..total).collect(), "other-language")
            }
        };
        let defining: Vec<usize> = match &defines {
            Some(re) => pool
                .iter()
                .copied()
                .filter(|&i| re.is_match(blocks[i].body))
                .collect(),
            None => Vec::new(),
        };
        let pool = if defining.is_empty() { pool } else { defining };
        let best = pool
            .iter()
            .copied()
            .max_by_key(|&i| (blocks[i].body.trim().len(), i))?;
        let b = &blocks[best];
        if b.body.trim().is_empty() {
            return None;
        }
        let tag = if b.tag.is_empty() {
            String::new()
        } else {
            format!(" `{}`", b.tag)
        };
        let how = format!(
            "{which}{tag} fenced block {} of {total}{}",
            best + 1,
            if b.closed { "" } else { " (unclosed)" }
        );
        return Some(Extracted {
            code: b.body.to_string(),
            how,
        });
    }
    if answer.trim().is_empty() {
        return None;
    }
    let first = answer.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.starts_with([' ', '\t']) {
        return Some(Extracted {
            code: answer.to_string(),
            how: "bare code (indented: a function body)".into(),
        });
    }
    let starts_code = |l: &str| syntax.starts.iter().any(|s| l.starts_with(s.as_str()));
    if starts_code(first) || syntax.starts.is_empty() {
        return Some(Extracted {
            code: answer.to_string(),
            how: "bare code".into(),
        });
    }
    // Leading lines that read like sentences ("Sure! Here is the code:") are dropped; the
    // first line that does not is where the code starts.
    let prose = |l: &str| {
        let t = l.trim();
        t.is_empty()
            || (t.split_whitespace().count() >= 3
                && t.ends_with(['.', ':', '!', '?'])
                && !t.contains(['=', '(', '[', '{', ';']))
    };
    let mut offset = 0;
    for line in answer.split_inclusive('\n') {
        if !prose(line) {
            let how = if offset == 0 {
                "bare text"
            } else {
                "bare code after leading prose"
            };
            return Some(Extracted {
                code: answer[offset..].to_string(),
                how: how.into(),
            });
        }
        offset += line.len();
    }
    Some(Extracted {
        code: answer.to_string(),
        how: "bare text".into(),
    })
}

/// Joins a code prompt (HumanEval's `prompt`) with what the model wrote; see the module docs.
pub fn join_prompt(
    prompt: &str,
    code: &str,
    syntax: &Syntax,
    func: Option<&str>,
) -> (String, &'static str) {
    let defines = func.and_then(|f| syntax.defines_re(f));
    if let Some(re) = &defines
        && re.is_match(code)
    {
        // The model repeated the signature: keep what comes before the prompt's definition.
        let prefix = match re.find(prompt) {
            Some(m) => {
                let line_start = prompt[..m.start()].rfind('\n').map(|i| i + 1).unwrap_or(0);
                // Decorators directly above the definition belong to it.
                let mut cut = line_start;
                while cut > 0 {
                    let prev_start = prompt[..cut - 1].rfind('\n').map(|i| i + 1).unwrap_or(0);
                    if prompt[prev_start..cut].trim_start().starts_with('@') {
                        cut = prev_start;
                    } else {
                        break;
                    }
                }
                &prompt[..cut]
            }
            None => prompt,
        };
        let mut out = prefix.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(code);
        return (out, "full function, prompt's preamble kept");
    }
    let first = code.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let needs_indent = !first.starts_with([' ', '\t']) && prompt_ends_in_block(prompt);
    let mut out = prompt.to_string();
    if needs_indent {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        for line in code.split_inclusive('\n') {
            if !line.trim().is_empty() {
                out.push_str("    ");
            }
            out.push_str(line);
        }
        return (out, "body appended to the prompt (re-indented)");
    }
    out.push_str(code);
    (out, "body appended to the prompt")
}

/// Does the prompt end inside an indented block (a function whose body is to be written)?
fn prompt_ends_in_block(prompt: &str) -> bool {
    let mut lines = prompt.lines().rev().filter(|l| !l.trim().is_empty());
    match lines.next() {
        Some(last) => last.starts_with([' ', '\t']) || last.trim_end().ends_with(':'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py() -> Syntax {
        Syntax::for_language("python", &[])
    }

    #[test]
    fn prefers_the_language_block_that_defines_the_function() {
        let a = "Here:\n```python\ndef f(x):\n    return x + 1\n```\nUsage:\n```python\nprint(f(1))\n```\n```bash\npython main.py and a much longer line here\n```\n";
        let e = extract(a, &py(), Some("f")).unwrap();
        assert_eq!(e.code, "def f(x):\n    return x + 1\n");
        assert_eq!(e.how, "tagged `python` fenced block 1 of 3");
    }

    #[test]
    fn longest_then_last_without_a_function_name() {
        let a = "```py\nx = 1\n```\n```py\ny = 22\n```\n";
        assert_eq!(extract(a, &py(), None).unwrap().code, "y = 22\n");
    }

    #[test]
    fn untagged_and_unclosed_blocks() {
        let a = "```\ndef f():\n    return 1\n```";
        assert_eq!(
            extract(a, &py(), Some("f")).unwrap().code,
            "def f():\n    return 1\n"
        );
        let a = "text\n~~~python\ndef f():\n    return 1\n";
        let e = extract(a, &py(), Some("f")).unwrap();
        assert_eq!(e.code, "def f():\n    return 1\n");
        assert!(e.how.contains("unclosed"));
    }

    #[test]
    fn other_language_blocks_are_the_last_resort() {
        let a = "```js\nfunction f() {}\n```\n";
        assert_eq!(
            extract(a, &py(), None).unwrap().how,
            "other-language `js` fenced block 1 of 1"
        );
    }

    #[test]
    fn bare_code_drops_leading_prose_and_keeps_bodies() {
        let a = "Sure! Here is the code:\ndef f(x):\n    return x\n";
        let e = extract(a, &py(), Some("f")).unwrap();
        assert_eq!(e.code, "def f(x):\n    return x\n");
        let body = "    return sorted(set(x))\n";
        assert_eq!(extract(body, &py(), Some("f")).unwrap().code, body);
        assert!(extract("  \n", &py(), None).is_none());
        let a = "BIG = [0] * 10\ndef f():\n    return BIG\n";
        assert_eq!(extract(a, &py(), Some("f")).unwrap().code, a);
    }

    #[test]
    fn completion_joins() {
        let prompt =
            "from typing import List\n\n\ndef f(xs: List[int]) -> int:\n    \"\"\"Sum.\"\"\"\n";
        let (p, _) = join_prompt(prompt, "    return sum(xs)\n", &py(), Some("f"));
        assert_eq!(p, format!("{prompt}    return sum(xs)\n"));
        let (p, how) = join_prompt(prompt, "return sum(xs)\n", &py(), Some("f"));
        assert_eq!(p, format!("{prompt}    return sum(xs)\n"));
        assert!(how.contains("re-indented"));
        let full = "def f(xs):\n    return sum(xs)\n";
        let (p, _) = join_prompt(prompt, full, &py(), Some("f"));
        assert_eq!(p, format!("from typing import List\n\n\n{full}"));
    }

    #[test]
    fn helper_functions_before_the_entry_point_are_kept() {
        let prompt = "def helper(s):\n    return s[::-1]\n\n\ndef g(s):\n    \"\"\"doc\"\"\"\n";
        let (p, _) = join_prompt(
            prompt,
            "def g(s):\n    return helper(s)\n",
            &py(),
            Some("g"),
        );
        assert!(p.starts_with("def helper(s):"));
        assert_eq!(p.matches("def g(").count(), 1);
    }
}
