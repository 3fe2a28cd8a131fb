//! `backend: outputs`: grade answers you already have. A JSON Lines (or CSV) file of
//! `{case, output}` rows, optionally with `suite`, `model`, `reasoning` and `sample` — a
//! spreadsheet of answers copied from a provider's web console, graded without any backend.
//!
//! ```yaml
//! models:
//!   qwen-plus-console:
//!     backend: outputs
//!     path: fixtures/outputs/qwen-plus.jsonl
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use llmtest_spec::ModelConfig;

use crate::types::{
    Backend, BackendContext, BackendError, BackendFactory, Choice, InfraError, InfraKind, Request,
    Response, parse_options,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The answers file, relative to the project root (`.jsonl` or `.csv`).
    path: String,
    /// A case with no answer in the file: `error` (default; an infrastructure error) or
    /// `skip` (the file covers only some cases on purpose).
    #[serde(default)]
    missing: Missing,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Missing {
    #[default]
    Error,
    Skip,
}

#[derive(Debug, Deserialize)]
struct Row {
    case: String,
    output: String,
    #[serde(default)]
    suite: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    sample: Option<u32>,
}

/// Serves recorded answers by case id.
pub struct OutputsBackend {
    model: String,
    path: String,
    skip_missing: bool,
    rows: HashMap<String, Vec<Row>>,
}

impl OutputsBackend {
    pub fn open(model: &str, abs: &Path, shown: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(abs)
            .map_err(|e| format!("cannot read outputs file `{shown}`: {e}"))?;
        let mut rows_v: Vec<Row> = Vec::new();
        if abs.extension().is_some_and(|e| e == "csv") {
            let mut rdr = csv_rows(&text).map_err(|e| format!("{shown}: {e}"))?;
            rows_v.append(&mut rdr);
        } else {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                rows_v.push(serde_json::from_str(line).map_err(|e| {
                    format!(
                        "{shown}:{}: {e} (expected {{\"case\": …, \"output\": …}})",
                        i + 1
                    )
                })?);
            }
        }
        let mut rows: HashMap<String, Vec<Row>> = HashMap::new();
        for r in rows_v {
            if r.model.as_deref().is_some_and(|m| m != model) {
                continue;
            }
            rows.entry(r.case.clone()).or_default().push(r);
        }
        for v in rows.values_mut() {
            v.sort_by_key(|r| r.sample.unwrap_or(0));
        }
        Ok(OutputsBackend {
            model: model.to_owned(),
            path: shown.to_owned(),
            skip_missing: false,
            rows,
        })
    }
}

/// `case,output[,suite,model,reasoning,sample]` in any column order, with a header; quoted
/// fields may hold commas, quotes and newlines.
fn csv_rows(text: &str) -> Result<Vec<Row>, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::Headers)
        .from_reader(text.as_bytes());
    let header = rdr.headers().map_err(|e| e.to_string())?.clone();
    if !header.iter().any(|h| h == "case") || !header.iter().any(|h| h == "output") {
        return Err("the header must name `case` and `output` columns".into());
    }
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| match e.position() {
            Some(p) => format!("line {}: {e}", p.line()),
            None => e.to_string(),
        })?;
        let get = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .and_then(|i| rec.get(i))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let line = rec.position().map_or(0, |p| p.line());
        rows.push(Row {
            case: get("case").unwrap_or_default(),
            output: get("output").unwrap_or_default(),
            suite: get("suite"),
            model: get("model"),
            reasoning: get("reasoning"),
            sample: match get("sample") {
                None => None,
                Some(s) => Some(s.parse().map_err(|_| {
                    format!("line {line}: `sample` must be a whole number, not `{s}`")
                })?),
            },
        });
    }
    Ok(rows)
}

#[async_trait::async_trait]
impl Backend for OutputsBackend {
    async fn generate(&self, req: &Request) -> Result<Response, InfraError> {
        let t0 = Instant::now();
        let rows: Vec<&Row> = self
            .rows
            .get(&req.case_id)
            .map(|v| {
                v.iter()
                    .filter(|r| r.suite.as_deref().is_none_or(|s| s == req.suite))
                    .collect()
            })
            .unwrap_or_default();
        if rows.len() < req.n as usize {
            let kind = if self.skip_missing && rows.is_empty() {
                InfraKind::Skip
            } else {
                InfraKind::Missing
            };
            return Err(InfraError::new(
                kind,
                format!(
                    "`{}` has {} answer(s) for case `{}` (suite `{}`, model `{}`), {} needed",
                    self.path,
                    rows.len(),
                    req.case_id,
                    req.suite,
                    self.model,
                    req.n
                ),
            ));
        }
        let choices = rows
            .iter()
            .take(req.n as usize)
            .map(|r| Choice {
                text: r.output.clone(),
                reasoning: r.reasoning.clone(),
                tool_calls: vec![],
                finish_reason: None,
            })
            .collect();
        Ok(Response::untimed(choices, t0))
    }
}

pub(crate) struct OutputsFactory;

impl BackendFactory for OutputsFactory {
    fn name(&self) -> &str {
        "outputs"
    }
    fn create(
        &self,
        model: &ModelConfig,
        ctx: &BackendContext,
    ) -> Result<Arc<dyn Backend>, BackendError> {
        let o: Options = parse_options(model)?;
        let mut b = OutputsBackend::open(&model.name, &ctx.root.join(&o.path), &o.path)
            .map_err(BackendError::config)?;
        b.skip_missing = o.missing == Missing::Skip;
        Ok(Arc::new(b))
    }
    fn offline(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes_and_newlines() {
        let rows =
            csv_rows("case,output\nrevenue,\"58,159,881千元\"\nq2,\"line1\nline \"\"2\"\"\"\n")
                .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].output, "58,159,881千元");
        assert_eq!(rows[1].output, "line1\nline \"2\"");
        let e = csv_rows("case,output\na,1,extra\n").unwrap_err();
        assert!(e.starts_with("line 2: "), "{e}");
        let e = csv_rows("case,output,sample\na,1,x\n").unwrap_err();
        assert_eq!(e, "line 2: `sample` must be a whole number, not `x`");
        assert!(
            csv_rows("id,text\na,1\n")
                .unwrap_err()
                .contains("`case` and `output`")
        );
    }
}
