//! Prompt templates (minijinja). Undefined variables are errors, not empty strings, and
//! fixture files are included with `{{ file("fixtures/…") }}` (raw text, paths relative to
//! the project root) or `{% include "fixtures/…" %}` (rendered as a template).

use std::path::{Path, PathBuf};

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value as JValue};
use serde_json::{Map, Value};

pub(crate) struct Templates {
    env: Environment<'static>,
}

pub(crate) struct TemplateError {
    pub message: String,
    pub hint: Option<String>,
}

impl Templates {
    pub fn new(root: &Path) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("default syntax is valid"),
        );
        let root: PathBuf = root.to_path_buf();
        let loader_root = root.clone();
        env.set_loader(move |name: &str| {
            let path = loader_root.join(name);
            crate::reads::note(&path);
            match std::fs::read_to_string(path) {
                Ok(s) => Ok(Some(s)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("cannot read `{name}`: {e}"),
                )),
            }
        });
        env.add_function(
            "file",
            move |path: String| -> Result<String, minijinja::Error> {
                let abs = root.join(&path);
                crate::reads::note(&abs);
                std::fs::read_to_string(abs).map_err(|e| {
                    minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        format!("cannot read include file `{path}`: {e}"),
                    )
                })
            },
        );
        Templates { env }
    }

    pub fn render(&self, tpl: &str, vars: &Map<String, Value>) -> Result<String, TemplateError> {
        if !tpl.contains("{{") && !tpl.contains("{%") && !tpl.contains("{#") {
            return Ok(tpl.to_owned());
        }
        self.env
            .render_str(tpl, JValue::from(minijinja::value::Serde(vars)))
            .map_err(convert)
    }

    pub fn compile<'a>(
        &'a self,
        tpl: &'a str,
    ) -> Result<minijinja::Template<'a, 'a>, TemplateError> {
        self.env.template_from_str(tpl).map_err(convert)
    }

    pub fn render_compiled(
        &self,
        t: &minijinja::Template<'_, '_>,
        vars: &Map<String, Value>,
    ) -> Result<String, TemplateError> {
        t.render(JValue::from(minijinja::value::Serde(vars)))
            .map_err(convert)
    }
}

fn convert(e: minijinja::Error) -> TemplateError {
    let hint = match e.kind() {
        ErrorKind::UndefinedError => {
            Some("define it under the case's `vars:` (or the suite's `defaults.vars:`)".to_string())
        }
        ErrorKind::TemplateNotFound => {
            Some("include paths are relative to the project root".to_string())
        }
        ErrorKind::SyntaxError => {
            Some("see minijinja's syntax: `{{ var }}`, `{% if %}…{% endif %}`".to_string())
        }
        _ => None,
    };
    let mut message = e
        .detail()
        .map(str::to_owned)
        .unwrap_or_else(|| e.kind().to_string());
    if e.kind() == ErrorKind::UndefinedError {
        message = format!("undefined variable ({message})");
    }
    if let Some(line) = e.line() {
        message = format!("{message} (template line {line})");
    }
    TemplateError { message, hint }
}
