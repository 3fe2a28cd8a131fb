//! Reading `cases_from` data files into rows of named fields.

use std::path::Path;

use serde_json::{Map, Value};

use crate::suite::DataFormat;

/// A data row: its 1-based line (JSONL, CSV) or item number (JSON), and its fields.
pub(crate) type Row = (usize, Map<String, Value>);

/// Rows with their 1-based line (JSONL, CSV) or item number (JSON) for error messages.
pub(crate) fn read_rows(
    path: &Path,
    format: DataFormat,
    limit: Option<usize>,
) -> Result<Vec<Row>, String> {
    let limit = limit.unwrap_or(usize::MAX);
    crate::reads::note(path);
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    match format {
        DataFormat::Jsonl => {
            for (i, line) in text.lines().enumerate() {
                if rows.len() >= limit {
                    break;
                }
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(line) {
                    Ok(Value::Object(m)) => rows.push((i + 1, m)),
                    Ok(_) => return Err(format!("line {}: expected a JSON object", i + 1)),
                    Err(e) => return Err(format!("line {}: {e}", i + 1)),
                }
            }
        }
        DataFormat::Json => {
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let Value::Array(items) = v else {
                return Err("expected a JSON array of objects".into());
            };
            for (i, item) in items.into_iter().take(limit).enumerate() {
                match item {
                    Value::Object(m) => rows.push((i + 1, m)),
                    _ => return Err(format!("item {}: expected an object", i + 1)),
                }
            }
        }
        DataFormat::Csv => {
            let mut rdr = csv::Reader::from_reader(text.as_bytes());
            let headers = rdr.headers().map_err(|e| e.to_string())?.clone();
            for rec in rdr.records() {
                if rows.len() >= limit {
                    break;
                }
                let rec = rec.map_err(|e| e.to_string())?;
                let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
                let m: Map<String, Value> = headers
                    .iter()
                    .zip(rec.iter())
                    .map(|(h, v)| (h.to_owned(), Value::String(v.to_owned())))
                    .collect();
                rows.push((line, m));
            }
        }
    }
    Ok(rows)
}
