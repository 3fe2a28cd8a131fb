//! The model's chat template (`tokenizer_config.json`'s `chat_template`) rendered with
//! minijinja the way `transformers`' `apply_chat_template` renders it with Jinja2, and
//! Qwen/Hermes-style `<tool_call>` blocks parsed back out of the answer.

use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, Value as JValue};
use serde_json::{Map, Value};

use llmtest_spec::{Message, ToolCall};

/// A compiled chat template plus the special tokens templates may refer to.
pub(crate) struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: String, eos_token: String) -> Result<Self, String> {
        let mut env = Environment::new();
        // Jinja2 as transformers configures it.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| e.to_string())?;
        env.set_syntax(syntax);
        // `message.content.startswith(…)`, `.split`, `.strip`: Python string methods.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat".to_owned(), source.to_owned())
            .map_err(|e| format!("chat template does not compile: {e:#}"))?;
        Ok(ChatTemplate {
            env,
            bos_token,
            eos_token,
        })
    }

    /// Renders messages (and tools) with `add_generation_prompt = true`. `kwargs` are extra
    /// template variables (vLLM's `chat_template_kwargs`, e.g. `enable_thinking`).
    pub fn render(
        &self,
        messages: &[Message],
        tools: Option<&[Value]>,
        kwargs: &Map<String, Value>,
    ) -> Result<String, String> {
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| serde_json::json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let mut ctx = Map::new();
        for (k, v) in kwargs {
            ctx.insert(k.clone(), v.clone());
        }
        ctx.insert("messages".into(), Value::Array(msgs));
        if let Some(tools) = tools.filter(|t| !t.is_empty()) {
            ctx.insert("tools".into(), Value::Array(tools.to_vec()));
        }
        ctx.insert("add_generation_prompt".into(), Value::Bool(true));
        ctx.insert("bos_token".into(), Value::String(self.bos_token.clone()));
        ctx.insert("eos_token".into(), Value::String(self.eos_token.clone()));
        let tmpl = self.env.get_template("chat").map_err(|e| e.to_string())?;
        tmpl.render(JValue::from(minijinja::value::Serde(&ctx)))
            .map_err(|e| format!("chat template failed: {e:#}"))
    }
}

fn raise_exception(msg: String) -> Result<JValue, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

/// `tojson` as transformers defines it (`json.dumps(x, ensure_ascii=False)`: `", "` and
/// `": "` separators, no HTML escaping, `indent` supported) — minijinja's built-in escapes
/// `<`, `>`, `&` and `'`, which would change the prompt the model sees.
fn tojson(value: &JValue, kwargs: Kwargs) -> Result<JValue, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    let mut out = String::new();
    write_py_json(&json, indent, sort_keys.unwrap_or(false), 0, &mut out);
    Ok(JValue::from_safe_string(out))
}

fn write_py_json(v: &Value, indent: Option<usize>, sort: bool, depth: usize, out: &mut String) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_py_json(item, indent, sort, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            if sort {
                keys.sort();
            }
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_py_json(&map[k], indent, sort, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Splits `<tool_call>{"name": …, "arguments": …}</tool_call>` blocks out of an answer, as
/// vLLM's `hermes` parser does: the text before the first block stays the content. Blocks
/// that are not valid JSON are left in the text (the grader sees what the model wrote).
pub(crate) fn parse_tool_calls(text: &str) -> (String, Vec<ToolCall>) {
    const OPEN: &str = "<tool_call>";
    const CLOSE: &str = "</tool_call>";
    let Some(first) = text.find(OPEN) else {
        return (text.to_owned(), Vec::new());
    };
    let mut calls = Vec::new();
    let mut rest = &text[first..];
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let (body, next) = match after.find(CLOSE) {
            Some(end) => (&after[..end], &after[end + CLOSE.len()..]),
            None => (after, ""),
        };
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(body.trim()) else {
            return (text.to_owned(), Vec::new());
        };
        let Some(name) = obj.get("name").and_then(Value::as_str) else {
            return (text.to_owned(), Vec::new());
        };
        let arguments = match obj.get("arguments") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "{}".to_owned(),
        };
        calls.push(ToolCall {
            id: Some(format!("call_{}", calls.len())),
            name: name.to_owned(),
            arguments,
        });
        rest = next;
    }
    (text[..first].trim_end().to_owned(), calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmtest_spec::Role;

    const CHATML: &str = "{%- for m in messages %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

    fn msg(role: Role, content: &str) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }

    #[test]
    fn renders_chatml_with_generation_prompt() {
        let t = ChatTemplate::new(CHATML, String::new(), "<|im_end|>".into()).unwrap();
        let out = t
            .render(
                &[msg(Role::System, "s"), msg(Role::User, "hi")],
                None,
                &Map::new(),
            )
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn tojson_matches_python_json_dumps() {
        let t = ChatTemplate::new(
            "{{ tools[0] | tojson }}|{{ tools[0] | tojson(indent=2) }}",
            String::new(),
            String::new(),
        )
        .unwrap();
        let tool = serde_json::json!({"name": "f", "d": "<a & 'b'>", "p": [1, 2.5, "中"], "e": {}});
        let out = t.render(&[], Some(&[tool]), &Map::new()).unwrap();
        assert_eq!(
            out,
            "{\"name\": \"f\", \"d\": \"<a & 'b'>\", \"p\": [1, 2.5, \"中\"], \"e\": {}}|{\n  \"name\": \"f\",\n  \"d\": \"<a & 'b'>\",\n  \"p\": [\n    1,\n    2.5,\n    \"中\"\n  ],\n  \"e\": {}\n}"
        );
    }

    #[test]
    fn python_string_methods_and_kwargs_work() {
        let src = "{% if enable_thinking is defined and not enable_thinking %}nothink {% endif %}{{ messages[0]['content'].strip().startswith('a') }}";
        let t = ChatTemplate::new(src, String::new(), String::new()).unwrap();
        let mut kw = Map::new();
        kw.insert("enable_thinking".into(), Value::Bool(false));
        assert_eq!(
            t.render(&[msg(Role::User, "  abc ")], None, &kw).unwrap(),
            "nothink True",
            "booleans print as Jinja2 prints them"
        );
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new(
            "{{ raise_exception('roles must alternate') }}",
            String::new(),
            String::new(),
        )
        .unwrap();
        let err = t.render(&[], None, &Map::new()).unwrap_err();
        assert!(err.contains("roles must alternate"), "{err}");
    }

    #[test]
    fn bad_template_is_reported() {
        let err = ChatTemplate::new("{% for %}", String::new(), String::new())
            .err()
            .unwrap();
        assert!(err.starts_with("chat template does not compile"), "{err}");
    }

    #[test]
    fn parses_hermes_tool_calls() {
        let (text, calls) = parse_tool_calls(
            "Let me check.\n<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Beijing\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"time\", \"arguments\": \"{}\"}\n</tool_call>",
        );
        assert_eq!(text, "Let me check.");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].name, "weather");
        assert_eq!(calls[0].arguments, "{\"city\":\"Beijing\"}");
        assert_eq!(calls[1].arguments, "{}");
    }

    #[test]
    fn malformed_tool_call_stays_text() {
        let s = "<tool_call>\n{\"name\": oops}\n</tool_call>";
        let (text, calls) = parse_tool_calls(s);
        assert_eq!(text, s);
        assert!(calls.is_empty());
    }
}
