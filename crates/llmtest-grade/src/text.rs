//! Built-in text and JSON assertions.
//!
//! | type | parameters | passes when the answer… |
//! |---|---|---|
//! | `equals` | `value` | equals it, leading/trailing whitespace ignored |
//! | `contains` / `icontains` | `value` | contains it (case-insensitively) |
//! | `contains-any` / `icontains-any` | `value: [..]` | contains at least one |
//! | `contains-all` / `icontains-all` | `value: [..]` | contains every one |
//! | `starts-with` | `value` | starts with it, leading whitespace ignored |
//! | `regex` | `value`, `ignore_case` | matches the pattern |
//! | `is-json` | — | is JSON (bare, or one fenced ```` ```json ```` block; only bare JSON when the case sets `response_format`) |
//! | `json-schema` | `value` (a schema) | is JSON valid against the schema |
//! | `json-path` | `path`, `value` | is JSON whose value at `path` equals `value` |
//!
//! Each can be negated: `type: not-contains` or `not: {type: contains, …}`.

use std::sync::Arc;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use llmtest_spec::CheckError;

use crate::grader::{FnFactory, Grade, Grader, GraderContext, GraderFactory, Sample, parse_params};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct One {
    value: ScalarText,
}

/// A string, or a number/bool written without quotes in YAML (`value: 142`).
#[derive(Deserialize)]
#[serde(untagged)]
enum ScalarText {
    S(String),
    N(serde_json::Number),
    B(bool),
}

impl ScalarText {
    fn text(self) -> String {
        match self {
            ScalarText::S(s) => s,
            ScalarText::N(n) => n.to_string(),
            ScalarText::B(b) => b.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Many {
    value: Vec<ScalarText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegexParams {
    value: String,
    #[serde(default)]
    ignore_case: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaParams {
    value: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathParams {
    path: String,
    value: Value,
}

type Build = fn(&Map<String, Value>, &GraderContext) -> Result<Arc<dyn Grader>, CheckError>;

pub(crate) fn factories() -> Vec<Arc<dyn GraderFactory>> {
    let table: &[(&str, Build)] = &[
        ("equals", |p, _| {
            let v = parse_params::<One>(p)?.value.text();
            Ok(Arc::new(move |s: &Sample<'_>| {
                Grade::binary(s.answer.trim() == v.trim(), quote(&v), excerpt(s.answer))
            }))
        }),
        ("contains", |p, _| {
            let v = parse_params::<One>(p)?.value.text();
            Ok(Arc::new(move |s: &Sample<'_>| {
                Grade::binary(
                    s.answer.contains(&v),
                    format!("contains {}", quote(&v)),
                    excerpt(s.answer),
                )
            }))
        }),
        ("icontains", |p, _| {
            let v = parse_params::<One>(p)?.value.text();
            let lv = v.to_lowercase();
            Ok(Arc::new(move |s: &Sample<'_>| {
                Grade::binary(
                    s.answer.to_lowercase().contains(&lv),
                    format!("contains {} (any case)", quote(&v)),
                    excerpt(s.answer),
                )
            }))
        }),
        ("contains-any", |p, _| many(p, false, false)),
        ("icontains-any", |p, _| many(p, false, true)),
        ("contains-all", |p, _| many(p, true, false)),
        ("icontains-all", |p, _| many(p, true, true)),
        ("starts-with", |p, _| {
            let v = parse_params::<One>(p)?.value.text();
            Ok(Arc::new(move |s: &Sample<'_>| {
                Grade::binary(
                    s.answer.trim_start().starts_with(&v),
                    format!("starts with {}", quote(&v)),
                    excerpt(s.answer),
                )
            }))
        }),
        ("regex", |p, _| {
            let RegexParams { value, ignore_case } = parse_params(p)?;
            let re = regex::RegexBuilder::new(&value)
                .case_insensitive(ignore_case)
                .size_limit(1 << 22)
                .build()
                .map_err(|e| {
                    CheckError::new(format!("invalid regex: {}", last_line(&e.to_string())))
                        .with_hint(
                            "the pattern uses Rust regex syntax (no look-around or backreferences)",
                        )
                })?;
            Ok(Arc::new(move |s: &Sample<'_>| regex_grade(&re, s.answer)))
        }),
        ("is-json", |p, _| {
            parse_params::<NoParams>(p)?;
            Ok(Arc::new(|s: &Sample<'_>| match answer_json(s) {
                Ok(v) => Grade::binary(true, "valid JSON", excerpt(s.answer))
                    .with_extracted(v.to_string()),
                Err(e) => {
                    Grade::binary(false, "valid JSON", format!("{e} in {}", excerpt(s.answer)))
                }
            }))
        }),
        ("json-schema", |p, _| {
            let SchemaParams { value } = parse_params(p)?;
            let validator = jsonschema::validator_for(&value)
                .map_err(|e| CheckError::new(format!("invalid JSON schema: {e}")))?;
            Ok(Arc::new(move |s: &Sample<'_>| match answer_json(s) {
                Err(e) => Grade::binary(
                    false,
                    "JSON matching the schema",
                    format!("{e} in {}", excerpt(s.answer)),
                ),
                Ok(v) => {
                    let errors: Vec<String> = validator
                        .iter_errors(&v)
                        .take(3)
                        .map(|e| format!("{} at `{}`", e, e.instance_path()))
                        .collect();
                    let found = if errors.is_empty() {
                        "valid".to_string()
                    } else {
                        errors.join("; ")
                    };
                    Grade::binary(errors.is_empty(), "JSON matching the schema", found)
                        .with_extracted(v.to_string())
                }
            }))
        }),
        ("json-path", |p, _| {
            let PathParams { path, value } = parse_params(p)?;
            let jp = serde_json_path::JsonPath::parse(&path)
                .map_err(|e| CheckError::new(format!("invalid JSONPath `{path}`: {e}")))?;
            Ok(Arc::new(move |s: &Sample<'_>| {
                let expected = format!("{path} == {value}");
                match answer_json(s) {
                    Err(e) => {
                        Grade::binary(false, expected, format!("{e} in {}", excerpt(s.answer)))
                    }
                    Ok(v) => {
                        let nodes = jp.query(&v).all();
                        let found = match nodes.as_slice() {
                            [] => None,
                            [one] => Some((*one).clone()),
                            many => Some(Value::Array(many.iter().map(|n| (*n).clone()).collect())),
                        };
                        match found {
                            None => Grade::binary(false, expected, format!("nothing at {path}")),
                            Some(f) => Grade::binary(json_eq(&f, &value), expected, f.to_string())
                                .with_extracted(f.to_string()),
                        }
                    }
                }
            }))
        }),
    ];
    table
        .iter()
        .map(|(k, b)| Arc::new(FnFactory::new(*k, *b)) as Arc<dyn GraderFactory>)
        .collect()
}

fn many(
    p: &Map<String, Value>,
    all: bool,
    ignore_case: bool,
) -> Result<Arc<dyn Grader>, CheckError> {
    let values: Vec<String> = parse_params::<Many>(p)?
        .value
        .into_iter()
        .map(ScalarText::text)
        .collect();
    if values.is_empty() {
        return Err(CheckError::new("`value` must list at least one string"));
    }
    let norm = move |s: &str| {
        if ignore_case {
            s.to_lowercase()
        } else {
            s.to_owned()
        }
    };
    let needles: Vec<String> = values.iter().map(|v| norm(v)).collect();
    let what = format!(
        "contains {} of [{}]{}",
        if all { "all" } else { "any" },
        values
            .iter()
            .map(|v| quote(v))
            .collect::<Vec<_>>()
            .join(", "),
        if ignore_case { " (any case)" } else { "" }
    );
    Ok(Arc::new(move |s: &Sample<'_>| {
        let hay = norm(s.answer);
        let hits: Vec<&String> = values
            .iter()
            .zip(&needles)
            .filter(|(_, n)| hay.contains(n.as_str()))
            .map(|(v, _)| v)
            .collect();
        let pass = if all {
            hits.len() == needles.len()
        } else {
            !hits.is_empty()
        };
        let found = if all && !pass {
            let missing: Vec<String> = values
                .iter()
                .filter(|v| !hits.contains(v))
                .map(|v| quote(v))
                .collect();
            format!("missing {} in {}", missing.join(", "), excerpt(s.answer))
        } else {
            excerpt(s.answer)
        };
        let mut g = Grade::binary(pass, what.clone(), found);
        if all {
            g.score = hits.len() as f64 / needles.len() as f64;
        }
        g
    }))
}

fn regex_grade(re: &Regex, answer: &str) -> Grade {
    let m = re.find(answer);
    let expected = format!("matches /{}/", re.as_str());
    match m {
        Some(m) => Grade::binary(true, expected, excerpt(answer)).with_extracted(m.as_str()),
        None => Grade::binary(false, expected, excerpt(answer)),
    }
}

/// JSON from the answer: the whole answer, or the content of a single fenced code block.
pub fn parse_json(answer: &str) -> Result<Value, String> {
    let t = answer.trim();
    match serde_json::from_str::<Value>(t) {
        Ok(v) => Ok(v),
        Err(e) => {
            if let Some(inner) = fenced(t) {
                return serde_json::from_str(inner)
                    .map_err(|e| format!("invalid JSON in code block: {e}"));
            }
            Err(format!("invalid JSON: {e}"))
        }
    }
}

/// JSON from a sample's answer. When the case asks for structured output
/// (`response_format` other than `text`), the answer must be JSON and nothing else: a
/// fenced block or prose around it fails, because the server promised bare JSON.
pub fn answer_json(s: &Sample<'_>) -> Result<Value, String> {
    let strict = s
        .case
        .params
        .response_format
        .as_ref()
        .is_some_and(|f| f.get("type").and_then(Value::as_str) != Some("text"));
    if !strict {
        return parse_json(s.answer);
    }
    serde_json::from_str::<Value>(s.answer.trim())
        .map_err(|e| format!("not JSON only, as `response_format` requires: {e}"))
}

fn fenced(t: &str) -> Option<&str> {
    let start = t.find("```")?;
    let after = &t[start + 3..];
    let nl = after.find('\n')?;
    let body = &after[nl + 1..];
    let end = body.find("```")?;
    Some(body[..end].trim())
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// The last non-empty line (a regex error ends with the reason).
fn last_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_owned()
}

/// The answer, trimmed and shortened for messages.
pub fn excerpt(s: &str) -> String {
    const MAX: usize = 200;
    let t = s.trim();
    if t.is_empty() {
        return "(empty answer)".into();
    }
    if t.chars().count() <= MAX {
        return format!("{t:?}");
    }
    let head: String = t.chars().take(MAX).collect();
    format!("{head:?}… ({} chars)", t.chars().count())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use llmtest_spec::{AssertionSpec, Case, GenParams, Loc, Prompt};
    use serde_json::json;

    use crate::{GraderContext, GraderRegistry, Outcome, Sample, grade_sample};

    fn case() -> Case {
        Case {
            id: "c".into(),
            prompt: Prompt::Completion("p".into()),
            vars: Default::default(),
            expect: vec![],
            weight: 1.0,
            threshold: None,
            samples: 1,
            tags: vec![],
            params: GenParams::default(),
            loc: Loc::new(PathBuf::from("s.yaml"), 1, 1),
        }
    }

    fn spec(v: serde_json::Value) -> AssertionSpec {
        llmtest_spec::parse_assertion(&v, Loc::default()).unwrap()
    }

    /// Grades `answer` with one assertion; returns (pass, found).
    fn run(v: serde_json::Value, answer: &str) -> (bool, String) {
        let reg = GraderRegistry::with_builtins(GraderContext::default());
        let a = spec(v);
        let g = reg.build(&a).unwrap();
        let c = case();
        let s = Sample::of_answer("s", "m", &c, answer);
        let verdict = grade_sample(&[(a, g)], &s, None, false);
        (
            verdict.outcome == Outcome::Pass,
            verdict.assertions[0].found.clone(),
        )
    }

    #[test]
    fn equals_ignores_surrounding_whitespace_only() {
        assert!(run(json!({"type": "equals", "value": "142"}), " 142\n").0);
        assert!(!run(json!({"type": "equals", "value": "142"}), "142.").0);
        assert!(
            run(json!({"type": "equals", "value": 142}), "142").0,
            "a YAML number compares as text"
        );
    }

    #[test]
    fn contains_family() {
        assert!(
            run(
                json!({"type": "contains", "value": "58,159,881"}),
                "收入为58,159,881千元"
            )
            .0
        );
        assert!(!run(json!({"type": "contains", "value": "Yuan"}), "yuan").0);
        assert!(run(json!({"type": "icontains", "value": "Yuan"}), "58 YUAN").0);
        assert!(
            run(
                json!({"type": "contains-any", "value": ["x=2", "x = 2"]}),
                "so x = 2"
            )
            .0
        );
        assert!(!run(json!({"type": "contains-any", "value": ["a", "b"]}), "c").0);
        let (pass, found) = run(
            json!({"type": "contains-all", "value": ["2", "3", "9"]}),
            "x=2 or x=3",
        );
        assert!(!pass);
        assert!(found.contains("missing \"9\""), "{found}");
        assert!(
            run(
                json!({"type": "icontains-all", "value": ["MAX", "min"]}),
                "max at 0, MIN at 2"
            )
            .0
        );
        assert!(
            run(
                json!({"type": "starts-with", "value": "58"}),
                "  58,159,881"
            )
            .0
        );
        assert!(!run(json!({"type": "starts-with", "value": "58"}), "It is 58").0);
    }

    #[test]
    fn negation_both_spellings() {
        assert!(
            run(
                json!({"type": "not-contains", "value": "53,529,941"}),
                "58,159,881"
            )
            .0
        );
        assert!(
            !run(
                json!({"not": {"type": "contains", "value": "58"}}),
                "58,159,881"
            )
            .0
        );
    }

    #[test]
    fn regex_with_flags_and_bad_pattern_rejected() {
        assert!(
            run(
                json!({"type": "regex", "value": "^x\\s*=\\s*2"}),
                "x = 2 or 3"
            )
            .0
        );
        assert!(
            run(
                json!({"type": "regex", "value": "ANSWER", "ignore_case": true}),
                "answer: 4"
            )
            .0
        );
        let reg = GraderRegistry::with_builtins(GraderContext::default());
        let err = reg
            .build(&spec(json!({"type": "regex", "value": "(unclosed"})))
            .err()
            .unwrap();
        assert!(err.message.starts_with("invalid regex"), "{}", err.message);
    }

    #[test]
    fn json_assertions() {
        assert!(run(json!({"type": "is-json"}), "{\"a\": 1}").0);
        assert!(
            run(
                json!({"type": "is-json"}),
                "Here:\n```json\n{\"a\": [1, 2]}\n```"
            )
            .0
        );
        assert!(!run(json!({"type": "is-json"}), "{a: 1}").0);
        let schema = json!({"type": "object", "required": ["revenue"], "properties": {"revenue": {"type": "number"}}});
        assert!(
            run(
                json!({"type": "json-schema", "value": schema}),
                "{\"revenue\": 58159881}"
            )
            .0
        );
        let (pass, found) = run(
            json!({"type": "json-schema", "value": schema}),
            "{\"revenue\": \"58159881\"}",
        );
        assert!(!pass && found.contains("/revenue"), "{found}");
        assert!(
            run(
                json!({"type": "json-path", "path": "$.roots[1]", "value": 3}),
                "{\"roots\": [2, 3.0]}"
            )
            .0
        );
        let (pass, found) = run(
            json!({"type": "json-path", "path": "$.x", "value": 1}),
            "{\"y\": 1}",
        );
        assert!(!pass && found.contains("nothing at"), "{found}");
    }

    #[test]
    fn unknown_params_get_a_hint() {
        let reg = GraderRegistry::with_builtins(GraderContext::default());
        let err = reg
            .build(&spec(json!({"type": "contains", "valeu": "x"})))
            .err()
            .unwrap();
        assert_eq!(err.message, "unknown key `valeu`");
        assert_eq!(err.hint.as_deref(), Some("did you mean `value`?"));
        let err = reg.build(&spec(json!({"type": "nope"}))).err().unwrap();
        assert!(err.hint.unwrap().contains("expected one of"));
    }

    #[test]
    fn weighted_score_and_threshold() {
        let reg = GraderRegistry::with_builtins(GraderContext::default());
        let a1 = spec(json!({"type": "contains", "value": "a", "weight": 3}));
        let a2 = spec(json!({"type": "contains", "value": "z", "weight": 1}));
        let graders = vec![
            (a1.clone(), reg.build(&a1).unwrap()),
            (a2.clone(), reg.build(&a2).unwrap()),
        ];
        let c = case();
        let s = Sample::of_answer("s", "m", &c, "abc");
        let v = grade_sample(&graders, &s, None, false);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!((v.score - 0.75).abs() < 1e-12);
        assert_eq!(
            grade_sample(&graders, &s, Some(0.7), false).outcome,
            Outcome::Pass
        );
        assert_eq!(
            grade_sample(&graders, &s, Some(0.8), false).outcome,
            Outcome::Fail
        );
        assert_eq!(
            grade_sample(&graders, &s, None, true).outcome,
            Outcome::UnterminatedReasoning
        );
    }
}
