//! `cases_from`: a data file (JSON Lines, JSON, CSV) imported as cases, one per row, with
//! the row's fields as template variables.

use std::path::Path;

use serde_json::{Map, Value};

use super::loc;
use super::suites::SuiteCtx;
use crate::diag::Loc;
use crate::model::{AssertionSpec, Case};
use crate::suite::{CasesFrom, DataFormat, SuiteFile};

impl SuiteCtx<'_> {
    pub(super) fn import(
        &mut self,
        cf: &CasesFrom,
        f: &SuiteFile,
        default_expect: &[AssertionSpec],
    ) -> Vec<Case> {
        let rel = self.rel;
        let l = loc(rel, &cf.path);
        let data_rel = rel.parent().unwrap_or(Path::new("")).join(&cf.path.value);
        let abs = self.project.root.join(&data_rel);
        let format = cf
            .format
            .or_else(|| match abs.extension().and_then(|e| e.to_str()) {
                Some("jsonl") | Some("ndjson") => Some(DataFormat::Jsonl),
                Some("json") => Some(DataFormat::Json),
                Some("csv") => Some(DataFormat::Csv),
                _ => None,
            });
        let Some(format) = format else {
            self.err(
                l,
                format!("cannot tell the format of `{}`", cf.path.value),
                Some("set `format: jsonl | json | csv`".into()),
            );
            return Vec::new();
        };
        let rows = match crate::data::read_rows(&abs, format, cf.limit) {
            Ok(r) => r,
            Err(e) => {
                self.err(
                    l,
                    format!("cannot import `{}`: {e}", data_rel.display()),
                    None,
                );
                return Vec::new();
            }
        };
        let stem = abs
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("row")
            .to_owned();
        let prompt_tpl = match self.templates.compile(&cf.prompt.value) {
            Ok(t) => t,
            Err(e) => {
                self.err(
                    loc(rel, &cf.prompt),
                    format!("template error: {}", e.message),
                    e.hint,
                );
                return Vec::new();
            }
        };
        let parsed: Vec<AssertionSpec> = cf
            .expect
            .iter()
            .filter_map(|a| self.assertion(a, &Map::new(), true))
            .collect();
        if parsed.len() != cf.expect.len() {
            return Vec::new();
        }
        let width = rows.len().to_string().len().max(4);
        let mut out = Vec::with_capacity(rows.len());
        for (i, (line, row)) in rows.into_iter().enumerate() {
            let row_loc = Loc::new(&data_rel, line as u32, 1);
            if cf.id.is_none()
                && self
                    .only_case
                    .is_some_and(|only| only != format!("{stem}-{i:0width$}"))
            {
                continue;
            }
            let mut vars = f.defaults.vars.clone();
            vars.insert("index".into(), Value::from(i));
            vars.insert("row".into(), Value::Object(row.clone()));
            for (k, v) in row {
                vars.insert(k, v);
            }
            let mut failed = false;
            for (k, v) in &cf.vars {
                let mut v = v.clone();
                let before = self.diags.len();
                self.render_value(&mut v, &vars, &row_loc);
                failed |= self.diags.len() != before;
                vars.insert(k.clone(), v);
            }
            let id = match &cf.id {
                Some(t) => self.render(t, &vars, l.clone()),
                None => Some(format!("{stem}-{i:0width$}")),
            };
            if let (Some(only), Some(id)) = (self.only_case, &id)
                && only != id
            {
                continue;
            }
            let text = match self.templates.render_compiled(&prompt_tpl, &vars) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.err(
                        row_loc.clone(),
                        format!("template error: {}", e.message),
                        e.hint,
                    );
                    None
                }
            };
            let (Some(id), Some(text), false) = (id, text, failed) else {
                if self.diags.len() > 20 {
                    break; // one broken mapping would otherwise repeat per row
                }
                continue;
            };
            let Some(prompt) = self.build_prompt(f, &vars, text, row_loc.clone()) else {
                continue;
            };
            let mut expect = Vec::with_capacity(default_expect.len() + parsed.len());
            expect.extend(default_expect.iter().map(|a| self.rerender(a, &vars)));
            for a in &parsed {
                let r = self.rerender(a, &vars);
                if let Err(e) = self.check.check(&r) {
                    self.err(
                        row_loc.clone(),
                        format!("assertion `{}`: {}", r.display_kind(), e.message),
                        e.hint,
                    );
                    continue;
                }
                expect.push(r);
            }
            out.push(Case {
                id,
                prompt,
                vars,
                expect,
                weight: 1.0,
                threshold: f.defaults.threshold,
                samples: cf.samples.or(f.defaults.samples).unwrap_or(1),
                tags: cf.tags.clone(),
                params: f.defaults.params.clone(),
                loc: row_loc,
            });
        }
        out
    }
}
