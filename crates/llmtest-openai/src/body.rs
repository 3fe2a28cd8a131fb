//! The JSON body of a request.

use serde_json::{Map, Value, json};

use llmtest_spec::{GenParams, Prompt};

use crate::options::Resolved;
use crate::url::Endpoint;

/// The JSON body of a request for `n` choices.
pub(crate) fn build_body(
    r: &Resolved,
    prompt: &Prompt,
    params: &GenParams,
    n: u32,
    stream: bool,
) -> (Endpoint, Value) {
    let mut b = Map::new();
    b.insert("model".into(), json!(r.served_model));
    let endpoint = match prompt {
        Prompt::Chat(msgs) => {
            let msgs: Vec<Value> = msgs
                .iter()
                .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
                .collect();
            b.insert("messages".into(), Value::Array(msgs));
            Endpoint::Chat
        }
        Prompt::Completion(text) => {
            b.insert("prompt".into(), json!(text));
            Endpoint::Completions
        }
    };
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            b.insert(k.to_owned(), v);
        }
    };
    put("temperature", params.temperature.map(|v| json!(v)));
    put("top_p", params.top_p.map(|v| json!(v)));
    put("top_k", params.top_k.map(|v| json!(v)));
    let mt_field = if endpoint == Endpoint::Chat {
        r.max_tokens_field.as_str()
    } else {
        "max_tokens"
    };
    put(mt_field, params.max_tokens.map(|v| json!(v)));
    put("seed", params.seed.map(|v| json!(v)));
    put("stop", params.stop.as_ref().map(|v| json!(v)));
    put(
        "presence_penalty",
        params.presence_penalty.map(|v| json!(v)),
    );
    put(
        "frequency_penalty",
        params.frequency_penalty.map(|v| json!(v)),
    );
    put("response_format", params.response_format.clone());
    put("tools", params.tools.as_ref().map(|v| json!(v)));
    put("tool_choice", params.tool_choice.clone());
    if n > 1 {
        put("n", Some(json!(n)));
    }
    if stream {
        put("stream", Some(json!(true)));
        if r.include_usage {
            put("stream_options", Some(json!({"include_usage": true})));
        }
    }
    for (k, v) in &params.extra_body {
        b.insert(k.clone(), v.clone());
    }
    (endpoint, Value::Object(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_holds_params_n_stream_options_and_extra_body() {
        use crate::options::{Options, resolve};
        let m = llmtest_spec::ModelConfig::new(
            "m",
            "openai",
            serde_json::json!({"provider": "openai", "api_key_env": "", "model": "gpt"}),
        );
        let opts: Options = llmtest_backend::parse_options(&m).unwrap();
        let r = resolve(&m, opts, std::path::Path::new("."), &|_| None).unwrap();
        let mut p = GenParams {
            temperature: Some(0.0),
            max_tokens: Some(16),
            seed: Some(7),
            stop: Some(vec!["\n".into()]),
            ..Default::default()
        };
        p.extra_body.insert(
            "chat_template_kwargs".into(),
            serde_json::json!({"enable_thinking": false}),
        );
        p.extra_body
            .insert("temperature".into(), serde_json::json!(0.5));
        let prompt = Prompt::Chat(vec![llmtest_spec::Message {
            role: llmtest_spec::Role::User,
            content: "hi".into(),
        }]);
        let (e, b) = build_body(&r, &prompt, &p, 3, true);
        assert_eq!(e, Endpoint::Chat);
        assert_eq!(b["model"], "gpt");
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["max_completion_tokens"], 16);
        assert_eq!(b["n"], 3);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["temperature"], 0.5, "extra_body wins");
        assert_eq!(b["chat_template_kwargs"]["enable_thinking"], false);
        let (e, b) = build_body(&r, &Prompt::Completion("1+1=".into()), &p, 1, false);
        assert_eq!(e, Endpoint::Completions);
        assert_eq!(b["max_tokens"], 16, "completions always take max_tokens");
        assert!(b.get("n").is_none() && b.get("stream").is_none());
    }
}
