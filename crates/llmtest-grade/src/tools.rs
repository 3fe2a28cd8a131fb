//! `tool-call`: the response called the expected function(s) with valid arguments.
//!
//! ```yaml
//! defaults:
//!   params:
//!     tools:                       # OpenAI format, sent with every request of the suite
//!       - type: function
//!         function:
//!           name: get_weather
//!           parameters: {type: object, properties: {city: {type: string}}, required: [city]}
//! cases:
//!   - id: weather-paris
//!     prompt: What is the weather in Paris?
//!     expect:
//!       - {type: tool-call, name: get_weather, arguments: {city: Paris}}
//!   - id: small-talk
//!     prompt: Hello!
//!     expect:
//!       - type: not-tool-call
//! ```
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `name` | — | the function that must be called (other calls allowed) |
//! | `arguments` | — | with `name`: the arguments it must be called with |
//! | `calls` | — | instead of `name`: every call expected, `[{name, arguments}]`; no other call allowed |
//! | `order` | `any` | `any`: parallel calls match in any order; `exact`: in the listed order |
//! | `match` | `exact` | `exact`: arguments equal the expected object; `subset`: the listed keys equal, others allowed |
//! | `schema` | `true` | check each call's arguments against its tool's `parameters` JSON schema |
//!
//! Calls come from the API's `tool_calls`; when there are none, Hermes-style
//! `<tool_call>{"name": …, "arguments": …}</tool_call>` blocks in the text are read (servers
//! run without a tool parser, raw completions). With no parameters, `tool-call` passes when
//! the response makes at least one call. Whatever the parameters, a call to a function the
//! request did not declare, arguments that are not a JSON object, or arguments that break
//! the tool's schema fail the assertion, and its negation too: `not-tool-call` passes only
//! when no (named) function was called and nothing was called wrongly.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use llmtest_spec::{CheckError, ToolCall};

use crate::grader::{Grade, Grader, GraderContext, GraderFactory, Outcome, Sample, parse_params};
use crate::text::json_eq;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(default)]
    calls: Option<Vec<Expected>>,
    #[serde(default)]
    order: Order,
    #[serde(default, rename = "match")]
    matching: Matching,
    #[serde(default = "yes")]
    schema: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    name: String,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
}

#[derive(Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Order {
    #[default]
    Any,
    Exact,
}

#[derive(Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Matching {
    #[default]
    Exact,
    Subset,
}

struct ToolCallGrader {
    expected: Vec<Expected>,
    /// `calls:` was given: the expected calls are all the calls.
    closed: bool,
    order: Order,
    matching: Matching,
    schema: bool,
}

pub(crate) fn factory() -> Arc<dyn GraderFactory> {
    Arc::new(Factory)
}

struct Factory;

impl GraderFactory for Factory {
    fn kind(&self) -> &str {
        "tool-call"
    }
    fn build(
        &self,
        params: &Map<String, Value>,
        _ctx: &GraderContext,
    ) -> Result<Arc<dyn Grader>, CheckError> {
        let p: Params = parse_params(params)?;
        let (expected, closed) = match (p.name, p.arguments, p.calls) {
            (Some(_), _, Some(_)) => {
                return Err(CheckError::new("`name` and `calls` cannot be used together")
                    .with_hint("one expected call: `name` (+ `arguments`); several: `calls: [{name, arguments}]`"));
            }
            (None, Some(_), _) => {
                return Err(CheckError::new("`arguments` needs `name`")
                    .with_hint("write `name: <function>` beside `arguments`"));
            }
            (Some(name), arguments, None) => (vec![Expected { name, arguments }], false),
            (None, None, Some(calls)) => {
                if calls.is_empty() {
                    return Err(CheckError::new("`calls` is empty").with_hint(
                        "to require that nothing is called, write `type: not-tool-call`",
                    ));
                }
                (calls, true)
            }
            (None, None, None) => (Vec::new(), false),
        };
        Ok(Arc::new(ToolCallGrader {
            expected,
            closed,
            order: p.order,
            matching: p.matching,
            schema: p.schema,
        }))
    }
}

/// A call as graded: its name and parsed arguments, or why they could not be read.
#[derive(Debug)]
struct Call {
    name: String,
    args: Result<Map<String, Value>, String>,
}

impl Grader for ToolCallGrader {
    fn grade(&self, s: &Sample<'_>) -> Grade {
        let calls = calls_of(s);
        let expected = self.describe();
        // A broken call fails the assertion and its negation alike.
        let broken = |why: String| Grade {
            outcome: Some(Outcome::Fail),
            ..Grade::binary(false, expected.clone(), why)
        };
        let declared = declared_tools(s);
        for c in &calls {
            let args = match &c.args {
                Ok(a) => a,
                Err(e) => return broken(format!("call to `{}`: {e}", c.name)),
            };
            let Some(declared) = &declared else { continue };
            let Some(tool) = declared.iter().find(|t| t.0 == c.name) else {
                let names: Vec<&str> = declared.iter().map(|t| t.0.as_str()).collect();
                return broken(format!(
                    "called undeclared function `{}` (declared: {})",
                    c.name,
                    names.join(", ")
                ));
            };
            if self.schema
                && let Some(schema) = &tool.1
            {
                match jsonschema::validator_for(schema) {
                    Err(e) => {
                        return broken(format!("tool `{}` has an invalid schema: {e}", c.name));
                    }
                    Ok(v) => {
                        let errs: Vec<String> = v
                            .iter_errors(&Value::Object(args.clone()))
                            .take(3)
                            .map(|e| format!("{e} at `{}`", e.instance_path()))
                            .collect();
                        if !errs.is_empty() {
                            return broken(format!(
                                "call to `{}` breaks its schema: {}",
                                c.name,
                                errs.join("; ")
                            ));
                        }
                    }
                }
            }
        }
        let found = describe_calls(&calls);
        let detail = Some(Value::Array(
            calls
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "name": c.name,
                        "arguments": c.args.as_ref().map(|a| Value::Object(a.clone())).unwrap_or(Value::Null),
                    })
                })
                .collect(),
        ));
        let pass = if self.expected.is_empty() {
            !calls.is_empty()
        } else if self.closed {
            calls.len() == self.expected.len() && self.assign(&calls)
        } else {
            self.assign(&calls)
        };
        Grade {
            detail,
            ..Grade::binary(pass, expected, found)
        }
    }
}

impl ToolCallGrader {
    fn describe(&self) -> String {
        if self.expected.is_empty() {
            return "a tool call".into();
        }
        let each: Vec<String> = self
            .expected
            .iter()
            .map(|e| match &e.arguments {
                Some(a) => format!("{}({})", e.name, Value::Object(a.clone())),
                None => format!("{}(…)", e.name),
            })
            .collect();
        let mut d = format!("call {}", each.join(", "));
        if self.closed && self.order == Order::Exact {
            d.push_str(" in this order");
        }
        d
    }

    fn matches(&self, e: &Expected, c: &Call) -> bool {
        if e.name != c.name {
            return false;
        }
        let (Some(want), Ok(got)) = (&e.arguments, &c.args) else {
            return e.arguments.is_none();
        };
        match self.matching {
            Matching::Exact => json_eq(&Value::Object(want.clone()), &Value::Object(got.clone())),
            Matching::Subset => want
                .iter()
                .all(|(k, v)| got.get(k).is_some_and(|g| json_eq(v, g))),
        }
    }

    /// Every expected call is matched by a distinct actual call.
    fn assign(&self, calls: &[Call]) -> bool {
        if self.order == Order::Exact {
            // In order: the expected calls are a subsequence of the actual ones (all of them
            // when `calls:` closed the list, which the caller checked by count).
            let mut it = calls.iter();
            return self
                .expected
                .iter()
                .all(|e| it.by_ref().any(|c| self.matches(e, c)));
        }
        // Any order: a small bipartite matching (augmenting paths).
        let mut owner: Vec<Option<usize>> = vec![None; calls.len()];
        for ei in 0..self.expected.len() {
            let mut seen = vec![false; calls.len()];
            if !self.augment(ei, calls, &mut owner, &mut seen) {
                return false;
            }
        }
        true
    }

    fn augment(
        &self,
        ei: usize,
        calls: &[Call],
        owner: &mut Vec<Option<usize>>,
        seen: &mut Vec<bool>,
    ) -> bool {
        for (ci, c) in calls.iter().enumerate() {
            if seen[ci] || !self.matches(&self.expected[ei], c) {
                continue;
            }
            seen[ci] = true;
            if owner[ci].is_none_or(|other| self.augment(other, calls, owner, seen)) {
                owner[ci] = Some(ei);
                return true;
            }
        }
        false
    }
}

fn describe_calls(calls: &[Call]) -> String {
    if calls.is_empty() {
        return "no tool call".into();
    }
    calls
        .iter()
        .map(|c| match &c.args {
            Ok(a) => format!("{}({})", c.name, Value::Object(a.clone())),
            Err(_) => format!("{}(?)", c.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The request's declared functions: name and `parameters` schema. `None` when the case
/// declares no tools (then any name is accepted).
fn declared_tools(s: &Sample<'_>) -> Option<Vec<(String, Option<Value>)>> {
    let tools = s.case.params.tools.as_ref().filter(|t| !t.is_empty())?;
    Some(
        tools
            .iter()
            .filter_map(|t| {
                let f = t.get("function").unwrap_or(t);
                let name = f.get("name")?.as_str()?.to_owned();
                Some((name, f.get("parameters").cloned()))
            })
            .collect(),
    )
}

fn calls_of(s: &Sample<'_>) -> Vec<Call> {
    if !s.tool_calls.is_empty() {
        return s.tool_calls.iter().map(from_api).collect();
    }
    hermes_calls(s.output)
}

fn from_api(t: &ToolCall) -> Call {
    let args = if t.arguments.trim().is_empty() {
        Ok(Map::new())
    } else {
        match serde_json::from_str::<Value>(&t.arguments) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(other) => Err(format!("arguments are not a JSON object: {other}")),
            Err(e) => Err(format!("arguments are not JSON ({e}): {}", t.arguments)),
        }
    };
    Call {
        name: t.name.clone(),
        args,
    }
}

/// `<tool_call>{"name": …, "arguments": {…}}</tool_call>` blocks (Qwen2.5 / Hermes format).
/// A block that is not such JSON is a broken call, not silently text.
fn hermes_calls(text: &str) -> Vec<Call> {
    const OPEN: &str = "<tool_call>";
    const CLOSE: &str = "</tool_call>";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let (body, next) = match after.find(CLOSE) {
            Some(end) => (&after[..end], &after[end + CLOSE.len()..]),
            None => (after, ""),
        };
        rest = next;
        let call = match serde_json::from_str::<Value>(body.trim()) {
            Ok(Value::Object(obj)) => match obj.get("name").and_then(Value::as_str) {
                Some(name) => Call {
                    name: name.to_owned(),
                    args: match obj.get("arguments") {
                        None => Ok(Map::new()),
                        Some(Value::Object(m)) => Ok(m.clone()),
                        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                            Ok(Value::Object(m)) => Ok(m),
                            _ => Err(format!("arguments are not a JSON object: {s}")),
                        },
                        Some(other) => Err(format!("arguments are not a JSON object: {other}")),
                    },
                },
                None => Call {
                    name: "?".into(),
                    args: Err("a <tool_call> block without a `name`".into()),
                },
            },
            _ => Call {
                name: "?".into(),
                args: Err(format!(
                    "a <tool_call> block that is not a JSON object: {}",
                    crate::text::excerpt(body)
                )),
            },
        };
        out.push(call);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GraderRegistry, grade_sample};
    use llmtest_spec::{AssertionSpec, Case, GenParams, Loc};
    use serde_json::json;

    fn case(tools: Option<Value>) -> Case {
        let params = GenParams {
            tools: tools.map(|t| t.as_array().unwrap().clone()),
            ..GenParams::default()
        };
        crate::test_case("weather?", params)
    }

    fn weather() -> Value {
        json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"], "additionalProperties": false}}},
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}])
    }

    /// (pass, found) of one assertion on text and API calls.
    fn run(a: Value, text: &str, api: &[(&str, &str)]) -> (bool, String) {
        let mut m = a.as_object().unwrap().clone();
        let kind = m.remove("type").unwrap().as_str().unwrap().to_owned();
        let (kind, negate) = match kind.strip_prefix("not-") {
            Some(k) => (k.to_owned(), true),
            None => (kind, false),
        };
        let spec = AssertionSpec {
            kind,
            negate,
            weight: 1.0,
            params: m,
            loc: Loc::new("s.yaml", 1, 1),
        };
        let g = GraderRegistry::with_builtins(GraderContext::default())
            .build(&spec)
            .unwrap();
        let c = case(Some(weather()));
        let calls: Vec<ToolCall> = api
            .iter()
            .map(|(n, a)| ToolCall {
                id: None,
                name: (*n).into(),
                arguments: (*a).into(),
            })
            .collect();
        let s = Sample {
            tool_calls: &calls,
            ..Sample::of_answer("s", "m", &c, text)
        };
        let v = grade_sample(&[(spec, g)], &s, None, false);
        (v.outcome == Outcome::Pass, v.assertions[0].found.clone())
    }

    #[test]
    fn api_calls_with_expected_arguments() {
        let a = json!({"type": "tool-call", "name": "get_weather", "arguments": {"city": "Paris"}});
        assert!(run(a.clone(), "", &[("get_weather", r#"{"city":"Paris"}"#)]).0);
        assert!(!run(a.clone(), "", &[("get_weather", r#"{"city":"Rome"}"#)]).0);
        assert!(!run(a.clone(), "", &[]).0);
        // `subset` ignores arguments not listed; `exact` does not.
        let args = r#"{"city":"Paris","unit":"c"}"#;
        assert!(!run(a.clone(), "", &[("get_weather", args)]).0);
        let mut sub = a.clone();
        sub["match"] = json!("subset");
        assert!(run(sub, "", &[("get_weather", args)]).0);
    }

    #[test]
    fn hermes_text_calls_are_read() {
        let a = json!({"type": "tool-call", "name": "get_weather", "arguments": {"city": "Paris"}});
        let text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
        assert!(run(a, text, &[]).0);
    }

    #[test]
    fn undeclared_functions_and_broken_arguments_fail_both_ways() {
        for (name, args) in [
            ("launch_rocket", r#"{}"#),
            ("get_weather", r#"{"city": 3}"#),
            ("get_weather", r#"{"town": "Paris"}"#),
            ("get_weather", "city=Paris"),
        ] {
            let (pass, found) = run(json!({"type": "tool-call"}), "", &[(name, args)]);
            assert!(!pass, "{name} {args}");
            let (npass, _) = run(json!({"type": "not-tool-call"}), "", &[(name, args)]);
            assert!(!npass, "not-tool-call must not pass a broken call: {found}");
        }
        let broken =
            "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": </tool_call>";
        assert!(!run(json!({"type": "not-tool-call"}), broken, &[]).0);
    }

    #[test]
    fn not_tool_call() {
        assert!(run(json!({"type": "not-tool-call"}), "It is sunny.", &[]).0);
        assert!(!run(json!({"type": "not-tool-call"}), "", &[("get_time", "{}")]).0);
        let named = json!({"type": "not-tool-call", "name": "get_weather"});
        assert!(run(named, "", &[("get_time", "{}")]).0);
    }

    #[test]
    fn parallel_calls_in_any_or_exact_order() {
        let calls = json!({"type": "tool-call", "calls": [
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "get_weather", "arguments": {"city": "Rome"}}]});
        let rome_paris = [
            ("get_weather", r#"{"city":"Rome"}"#),
            ("get_weather", r#"{"city":"Paris"}"#),
        ];
        assert!(run(calls.clone(), "", &rome_paris).0);
        let mut exact = calls.clone();
        exact["order"] = json!("exact");
        assert!(!run(exact.clone(), "", &rome_paris).0);
        let paris_rome = [rome_paris[1], rome_paris[0]];
        assert!(run(exact, "", &paris_rome).0);
        // `calls:` is the whole list: an extra call fails, a missing one too.
        let three = [rome_paris[0], rome_paris[1], ("get_time", "{}")];
        assert!(!run(calls.clone(), "", &three).0);
        assert!(!run(calls, "", &rome_paris[..1]).0);
    }

    #[test]
    fn bad_parameters_are_load_errors() {
        let r = GraderRegistry::with_builtins(GraderContext::default());
        for p in [
            json!({"name": "f", "calls": [{"name": "g"}]}),
            json!({"arguments": {"a": 1}}),
            json!({"calls": []}),
            json!({"name": "f", "order": "sorted"}),
        ] {
            let spec = AssertionSpec {
                kind: "tool-call".into(),
                negate: false,
                weight: 1.0,
                params: p.as_object().unwrap().clone(),
                loc: Loc::new("s.yaml", 1, 1),
            };
            assert!(r.build(&spec).is_err(), "{p}");
        }
    }
}
