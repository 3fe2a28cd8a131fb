//! Reading a judge's verdict: strict JSON first (what structured output returns), then
//! tolerant extraction (a fenced block, the last JSON object in prose, `score: 4` lines).
//! What cannot be read is an error of the judge, never a zero score.

use regex::Regex;
use serde_json::{Map, Value};

use crate::reasoning::split_reasoning;

/// The verdict object, with the field `key` present. `text` is the judge's raw output.
pub(crate) fn verdict_object(text: &str, key: &str) -> Result<Map<String, Value>, String> {
    let answer = split_reasoning(text, None, false).answer;
    let t = answer.trim();
    if t.is_empty() {
        return Err("the judge's answer is empty".into());
    }
    let has_key = |v: &Value| v.as_object().filter(|o| o.contains_key(key)).cloned();
    if let Ok(v) = serde_json::from_str::<Value>(t)
        && let Some(o) = has_key(&v)
    {
        return Ok(o);
    }
    // The last object in the text that carries the key (judges often restate the question's
    // JSON before answering).
    for cand in objects(t).into_iter().rev() {
        if let Ok(v) = serde_json::from_str::<Value>(cand)
            && let Some(o) = has_key(&v)
        {
            return Ok(o);
        }
    }
    // `Score: 4`, `"verdict": "Y"`, `winner = B` in prose.
    let re = Regex::new(&format!(
        r#"(?i)["']?\b{}\b["']?\s*[:=]\s*["']?([A-Za-z0-9_.\-]+)"#,
        regex::escape(key)
    ))
    .expect("static pattern");
    if let Some(c) = re.captures_iter(t).last() {
        let raw = c[1].trim_end_matches('.');
        let v = match raw.parse::<f64>() {
            Ok(_) => serde_json::from_str(raw).unwrap_or(Value::String(raw.into())),
            Err(_) => match raw.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(raw.into()),
            },
        };
        let mut o = Map::new();
        o.insert(key.into(), v);
        o.insert("reason".into(), Value::String(crate::text::excerpt(t)));
        return Ok(o);
    }
    Err(format!(
        "no `{key}` in the judge's answer: {}",
        crate::text::excerpt(t)
    ))
}

/// Every balanced `{…}` span (outside JSON strings), outermost first by position.
fn objects(t: &str) -> Vec<&str> {
    let bytes = t.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let (mut depth, mut in_str, mut esc) = (0usize, false, false);
        let mut end = None;
        for (j, &b) in bytes.iter().enumerate().skip(i) {
            if in_str {
                match (esc, b) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        match end {
            Some(j) => {
                out.push(&t[i..=j]);
                i = j + 1;
            }
            None => break,
        }
    }
    out
}

/// The reason the judge gave, if any.
pub(crate) fn reason(o: &Map<String, Value>) -> String {
    o.get("reason")
        .or_else(|| o.get("reasoning"))
        .or_else(|| o.get("explanation"))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_json_fenced_prose_and_lines() {
        let o = verdict_object(r#"{"reason": "ok", "score": 4}"#, "score").unwrap();
        assert_eq!(o["score"], 4);
        let o = verdict_object(
            "Here is my verdict:\n```json\n{\"reason\": \"clear {x}\", \"score\": 5}\n```",
            "score",
        )
        .unwrap();
        assert_eq!(o["score"], 5);
        assert_eq!(reason(&o), "clear {x}");
        // The restated example is skipped for the last object that has the key.
        let o = verdict_object(
            "Format: {\"a\": 1}. Answer: {\"reason\": \"}\\\"\", \"verdict\": \"N\"}",
            "verdict",
        )
        .unwrap();
        assert_eq!(o["verdict"], "N");
        let o = verdict_object("<think>hmm score: 1</think>Reasoning… Score: 3.", "score").unwrap();
        assert_eq!(o["score"], 3);
        let o = verdict_object("Winner = B", "winner").unwrap();
        assert_eq!(o["winner"], "B");
    }

    #[test]
    fn unreadable_verdicts_are_errors() {
        for t in [
            "",
            "   ",
            "I think it is fine.",
            "{\"score\": ",
            "<think>score: 5",
        ] {
            assert!(verdict_object(t, "score").is_err(), "{t:?}");
        }
    }
}
