//! Suite files resolved into suites: names, models, defaults, inline cases with their
//! prompts rendered and assertions checked, perf scenarios. `cases_from` imports are in
//! `cases_from.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::assertion::parse_assertion;
use super::loc;
use super::project::Project;
use super::yaml::parse_yaml;
use crate::diag::{Diagnostic, Diagnostics, Loc, unknown_name_hint};
use crate::model::{AssertionCheck, AssertionSpec, Case, Suite};
use crate::suite::{CaseDef, SuiteFile};
use crate::template::Templates;
use crate::types::{Message, Mode, Prompt, Role};

/// Loads `files` (relative to the project root) into suites. Every problem in every file is
/// collected; the result is `Err` with all of them if there is any.
pub fn load_suites(
    project: &Project,
    files: &[PathBuf],
    check: &dyn AssertionCheck,
) -> Result<Vec<Suite>, Diagnostics> {
    load_suites_named(project, files, check, None)
}

/// As [`load_suites`], but only suites whose name is in `only` are resolved (cases rendered,
/// data imported, assertions built); the others are parsed and then left out. For a process
/// that runs one trial (`cargo nextest`), after a full load has validated everything.
pub fn load_suites_named(
    project: &Project,
    files: &[PathBuf],
    check: &dyn AssertionCheck,
    only: Option<&[String]>,
) -> Result<Vec<Suite>, Diagnostics> {
    load_suites_filtered(project, files, check, only, None)
}

/// As [`load_suites_named`], and when `only_case` is given, only the case with that id is
/// rendered and built in each resolved suite (rows of `cases_from` data are skipped once
/// their id is known). Duplicate ids and empty suites are not diagnosed in this mode: it
/// is for a process that runs one trial, after a full load has validated everything.
pub fn load_suites_filtered(
    project: &Project,
    files: &[PathBuf],
    check: &dyn AssertionCheck,
    only: Option<&[String]>,
    only_case: Option<&str>,
) -> Result<Vec<Suite>, Diagnostics> {
    let templates = Templates::new(&project.root);
    let mut diags = Diagnostics::default();
    let mut suites: Vec<Suite> = Vec::new();
    let mut names: HashMap<String, Loc> = HashMap::new();
    for rel in files {
        let src = match std::fs::read_to_string(project.root.join(rel)) {
            Ok(s) => s,
            Err(e) => {
                diags.push(Diagnostic::new(
                    Loc::new(rel, 0, 0),
                    format!("cannot read suite: {e}"),
                ));
                continue;
            }
        };
        let file: SuiteFile = match parse_yaml(rel, &src) {
            Ok(f) => f,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        if only.is_some_and(|names| !names.contains(&file.suite.value)) {
            continue;
        }
        let mut ctx = SuiteCtx {
            rel,
            src: &src,
            project,
            templates: &templates,
            check,
            only_case,
            judge: None,
            diags: Diagnostics::default(),
        };
        let suite = ctx.resolve(file);
        if let Some(prev) = names.get(&suite.name) {
            ctx.diags.push(
                Diagnostic::new(
                    Loc::new(rel, 1, 1),
                    format!("duplicate suite name `{}`", suite.name),
                )
                .with_hint(format!("`{}` already uses it", prev.file.display())),
            );
        } else {
            names.insert(suite.name.clone(), Loc::new(rel, 1, 1));
        }
        diags.extend(ctx.diags);
        suites.push(suite);
    }
    if diags.is_empty() {
        Ok(suites)
    } else {
        diags.sort();
        Err(diags)
    }
}

pub(super) struct SuiteCtx<'a> {
    pub(super) rel: &'a Path,
    pub(super) src: &'a str,
    pub(super) project: &'a Project,
    pub(super) templates: &'a Templates,
    pub(super) check: &'a dyn AssertionCheck,
    /// Build only this case (see [`load_suites_filtered`]).
    pub(super) only_case: Option<&'a str>,
    /// The suite's `defaults.judge`, given to model-graded assertions that name none.
    pub(super) judge: Option<String>,
    pub(super) diags: Diagnostics,
}

impl SuiteCtx<'_> {
    pub(super) fn err(&mut self, l: Loc, msg: impl Into<String>, hint: Option<String>) {
        let same_file = l.file == self.rel;
        let mut d = Diagnostic::new(l, msg);
        if same_file {
            d = d.with_source(self.src);
        }
        d.hint = hint;
        self.diags.push(d);
    }

    fn resolve(&mut self, f: SuiteFile) -> Suite {
        let rel = self.rel;
        if f.version.value != 1 {
            self.err(
                loc(rel, &f.version),
                format!("unsupported suite version {}", f.version.value),
                Some("this llmtest reads `version: 1`".into()),
            );
        }
        let name = f.suite.value.clone();
        if name.trim().is_empty() || name.contains(['/', '\\', ':']) {
            self.err(
                loc(rel, &f.suite),
                "suite name must be non-empty and contain no `/`, `\\` or `:`",
                None,
            );
        }
        let models = f.models.as_ref().map(|ms| {
            let known: Vec<&str> = self.project.models.keys().map(String::as_str).collect();
            ms.iter()
                .filter_map(|m| {
                    if self.project.models.contains_key(&m.value) {
                        Some(m.value.clone())
                    } else {
                        let hint = if known.is_empty() {
                            "no models are configured: add them to llmtest.yaml".to_string()
                        } else {
                            unknown_name_hint(&m.value, known.iter().copied())
                        };
                        self.err(
                            loc(rel, m),
                            format!("unknown model `{}`", m.value),
                            Some(hint),
                        );
                        None
                    }
                })
                .collect()
        });
        for k in &f.pass_at_k {
            if *k == 0 {
                self.err(Loc::new(rel, 1, 1), "pass_at_k values must be ≥ 1", None);
            }
        }
        let d = &f.defaults;
        self.judge = d.judge.as_ref().map(|j| {
            if !self.project.models.contains_key(&j.value) {
                let known: Vec<&str> = self.project.models.keys().map(String::as_str).collect();
                self.err(
                    loc(rel, j),
                    format!("`judge: {}` is not a configured model", j.value),
                    Some(unknown_name_hint(&j.value, known.iter().copied())),
                );
            }
            j.value.clone()
        });
        let default_expect: Vec<AssertionSpec> = d
            .expect
            .iter()
            .filter_map(|a| self.assertion(a, &Map::new(), true))
            .collect();
        let mut cases = Vec::new();
        let mut ids: HashMap<String, Loc> = HashMap::new();
        for c in &f.cases {
            if self.only_case.is_some_and(|only| only != c.id.value) {
                continue;
            }
            // Ids are checked on the definitions, so a duplicate is found even when one of the
            // two cases has other errors.
            let l = loc(rel, &c.id);
            if let Some(first) = ids.get(&c.id.value) {
                let hint = format!("first defined at {first}; case ids must be unique in a suite");
                self.err(l, format!("duplicate case id `{}`", c.id.value), Some(hint));
            } else {
                ids.insert(c.id.value.clone(), l);
            }
            if let Some(case) = self.case(c, &f, &default_expect) {
                cases.push(case);
            }
        }
        for cf in &f.cases_from {
            let imported = self.import(cf, &f, &default_expect);
            // Exactly: a Vec left to double holds up to twice the cases' memory.
            cases.reserve_exact(imported.len());
            for case in imported {
                self.unique(&mut ids, &case);
                cases.push(case);
            }
        }
        let perf = f.perf.as_ref().map(|def| {
            let l = loc(rel, def);
            if !f.cases.is_empty() || !f.cases_from.is_empty() {
                self.err(
                    l.clone(),
                    "a perf suite has no `cases:` or `cases_from:`",
                    Some(
                        "its cases are the `perf:` scenarios; put accuracy cases in another suite"
                            .into(),
                    ),
                );
            }
            let mut errs = Vec::new();
            let (spec, perf_cases) = crate::perf::resolve(
                def,
                rel,
                &self.project.root,
                f.mode,
                &f.defaults.params,
                self.only_case,
                &mut errs,
            );
            for (l, msg, hint) in errs {
                self.err(l, msg, hint);
            }
            cases.extend(perf_cases);
            std::sync::Arc::new(spec)
        });
        if cases.is_empty() && self.diags.is_empty() && self.only_case.is_none() {
            self.err(
                loc(rel, &f.suite),
                format!("suite `{name}` has no cases"),
                Some("add `cases:` or `cases_from:`".into()),
            );
        }
        Suite {
            name,
            file: rel.to_path_buf(),
            description: f.description.clone(),
            tags: f.tags.clone(),
            models,
            mode: f.mode,
            // Latency is not a verdict to snapshot: perf suites are graded by their bounds.
            snapshot: if perf.is_some() {
                crate::types::SnapshotMode::Off
            } else {
                f.snapshot
            },
            pass_at_k: f.pass_at_k.clone(),
            reasoning: f.defaults.reasoning,
            cases,
            perf,
        }
    }

    fn unique(&mut self, ids: &mut HashMap<String, Loc>, case: &Case) {
        if let Some(first) = ids.get(&case.id) {
            let hint = format!("first defined at {first}; case ids must be unique in a suite");
            self.err(
                case.loc.clone(),
                format!("duplicate case id `{}`", case.id),
                Some(hint),
            );
        } else {
            ids.insert(case.id.clone(), case.loc.clone());
        }
    }

    fn vars_for(&self, f: &SuiteFile, own: &Map<String, Value>) -> Map<String, Value> {
        let mut vars = f.defaults.vars.clone();
        for (k, v) in own {
            vars.insert(k.clone(), v.clone());
        }
        vars
    }

    fn case(
        &mut self,
        c: &CaseDef,
        f: &SuiteFile,
        default_expect: &[AssertionSpec],
    ) -> Option<Case> {
        let rel = self.rel;
        let l = loc(rel, &c.id);
        let id = c.id.value.clone();
        if id.trim().is_empty() || id.contains(['/', '\\', ':']) || id.contains(char::is_whitespace)
        {
            self.err(
                l.clone(),
                format!("invalid case id `{id}`"),
                Some("ids are non-empty, without spaces, `/`, `\\` or `:`".into()),
            );
        }
        let vars = self.vars_for(f, &c.vars);
        let prompt = match (&c.prompt, &c.messages) {
            (Some(p), None) => {
                let text = self.render(&p.value, &vars, loc(rel, p))?;
                self.build_prompt(f, &vars, text, l.clone())?
            }
            (None, Some(ms)) => {
                if f.mode == Mode::Completion {
                    self.err(
                        loc(rel, ms),
                        "`messages` needs `mode: chat`",
                        Some("a completion suite takes `prompt:`".into()),
                    );
                    return None;
                }
                let mut out = Vec::new();
                if let Some(sys) = &f.defaults.system
                    && !ms.value.iter().any(|m| m.role == Role::System)
                {
                    out.push(Message {
                        role: Role::System,
                        content: self.render(sys, &vars, l.clone())?,
                    });
                }
                for m in &ms.value {
                    out.push(Message {
                        role: m.role,
                        content: self.render(&m.content, &vars, loc(rel, ms))?,
                    });
                }
                Prompt::Chat(out)
            }
            (Some(_), Some(_)) => {
                self.err(
                    l,
                    format!("case `{id}` has both `prompt` and `messages`"),
                    Some("keep one".into()),
                );
                return None;
            }
            (None, None) => {
                self.err(
                    l,
                    format!("case `{id}` has no `prompt` or `messages`"),
                    None,
                );
                return None;
            }
        };
        let mut expect = default_expect
            .iter()
            .map(|a| self.rerender(a, &vars))
            .collect::<Vec<_>>();
        expect.extend(
            c.expect
                .iter()
                .filter_map(|a| self.assertion(a, &vars, false)),
        );
        let weight = c.weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight >= 0.0) {
            self.err(l.clone(), "`weight` must be a finite number ≥ 0", None);
        }
        let threshold = c.threshold.or(f.defaults.threshold);
        if let Some(t) = threshold
            && !(0.0..=1.0).contains(&t)
        {
            self.err(l.clone(), format!("`threshold` {t} is outside 0..=1"), None);
        }
        let samples = c.samples.or(f.defaults.samples).unwrap_or(1);
        if samples == 0 {
            self.err(l.clone(), "`samples` must be ≥ 1", None);
        }
        let params = match &c.params {
            Some(p) => f.defaults.params.merged(p),
            None => f.defaults.params.clone(),
        };
        Some(Case {
            id,
            prompt,
            vars,
            expect,
            weight,
            threshold,
            samples,
            tags: c.tags.clone(),
            params,
            loc: l,
        })
    }

    pub(super) fn build_prompt(
        &mut self,
        f: &SuiteFile,
        vars: &Map<String, Value>,
        text: String,
        l: Loc,
    ) -> Option<Prompt> {
        Some(match f.mode {
            Mode::Completion => Prompt::Completion(text),
            Mode::Chat => {
                let mut msgs = Vec::new();
                if let Some(sys) = &f.defaults.system {
                    msgs.push(Message {
                        role: Role::System,
                        content: self.render(sys, vars, l)?,
                    });
                }
                msgs.push(Message {
                    role: Role::User,
                    content: text,
                });
                Prompt::Chat(msgs)
            }
        })
    }

    pub(super) fn render(
        &mut self,
        tpl: &str,
        vars: &Map<String, Value>,
        l: Loc,
    ) -> Option<String> {
        match self.templates.render(tpl, vars) {
            Ok(s) => Some(s),
            Err(e) => {
                self.err(l, format!("template error: {}", e.message), e.hint);
                None
            }
        }
    }

    /// Parse one `expect:` entry. Default assertions are parsed once with no variables and
    /// re-rendered per case ([`Self::rerender`]).
    pub(super) fn assertion(
        &mut self,
        a: &Spanned<Value>,
        vars: &Map<String, Value>,
        deferred: bool,
    ) -> Option<AssertionSpec> {
        let l = loc(self.rel, a);
        let spec = match parse_assertion(&a.value, l.clone()) {
            Ok(s) => s,
            Err((msg, hint)) => {
                self.err(l, msg, hint);
                return None;
            }
        };
        let mut spec = if deferred {
            spec
        } else {
            self.rerender(&spec, vars)
        };
        if let Some(j) = &self.judge
            && crate::JUDGED_KINDS.contains(&spec.kind.as_str())
            && !spec.params.contains_key("judge")
        {
            spec.params.insert("judge".into(), Value::String(j.clone()));
        }
        if let Err(e) = self.check.check(&spec) {
            let msg = if e.message.starts_with("unknown assertion type") {
                e.message
            } else {
                format!("assertion `{}`: {}", spec.display_kind(), e.message)
            };
            self.err(l, msg, e.hint);
            return None;
        }
        Some(spec)
    }

    pub(super) fn rerender(
        &mut self,
        a: &AssertionSpec,
        vars: &Map<String, Value>,
    ) -> AssertionSpec {
        let mut out = a.clone();
        for v in out.params.values_mut() {
            self.render_value(v, vars, &a.loc);
        }
        out
    }

    pub(super) fn render_value(&mut self, v: &mut Value, vars: &Map<String, Value>, l: &Loc) {
        match v {
            Value::String(s) if s.contains("{{") || s.contains("{%") => {
                if let Some(r) = self.render(s, vars, l.clone()) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.render_value(i, vars, l)),
            Value::Object(m) => m.values_mut().for_each(|i| self.render_value(i, vars, l)),
            _ => {}
        }
    }
}
