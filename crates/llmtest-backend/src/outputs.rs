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
    Response, Timings, parse_options,
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

/// Minimal CSV reading for `case,output[,suite,model,reasoning,sample]` with quoted fields.
fn csv_rows(text: &str) -> Result<Vec<Row>, String> {
    let mut records = parse_csv(text)?;
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let header = records.remove(0);
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(ci), Some(oi)) = (col("case"), col("output")) else {
        return Err("the header must name `case` and `output` columns".into());
    };
    let (si, mi, ri, ni) = (col("suite"), col("model"), col("reasoning"), col("sample"));
    let get = |r: &Vec<String>, i: Option<usize>| {
        i.and_then(|i| r.get(i)).filter(|s| !s.is_empty()).cloned()
    };
    Ok(records
        .iter()
        .map(|r| Row {
            case: r.get(ci).cloned().unwrap_or_default(),
            output: r.get(oi).cloned().unwrap_or_default(),
            suite: get(r, si),
            model: get(r, mi),
            reasoning: get(r, ri),
            sample: get(r, ni).and_then(|s| s.parse().ok()),
        })
        .collect())
}

fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut out = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        out.push(row);
    }
    Ok(out)
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
        Ok(Response {
            choices,
            usage: None,
            timings: Timings {
                total_ms: t0.elapsed().as_secs_f64() * 1e3,
                ..Timings::default()
            },
            facts: Default::default(),
        })
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
    }
}
