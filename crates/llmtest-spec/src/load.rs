//! Loading in passes: parse every file (located errors), validate everything, and only then
//! hand back suites. All problems of all files are reported together.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use crate::config::{ConfigFile, MODEL_COMMON_KEYS, ModelConfig, Profile, RunMode};
use crate::diag::{Diagnostic, Diagnostics, Loc, did_you_mean, unknown_name_hint};
use crate::model::{AssertionCheck, AssertionSpec, Case, Suite};
use crate::suite::{CaseDef, CasesFrom, DataFormat, SuiteFile};
use crate::template::Templates;
use crate::types::{GenParams, Message, Mode, Prompt, Role};

/// The name of the project config file at the project root.
pub const CONFIG_FILE: &str = "llmtest.yaml";

/// A project: its root, `llmtest.yaml` resolved.
#[derive(Clone, Debug)]
pub struct Project {
    pub root: PathBuf,
    /// Suite directories or files, relative to the root.
    pub suite_paths: Vec<PathBuf>,
    pub snapshots: PathBuf,
    pub cassettes: PathBuf,
    pub results: PathBuf,
    pub models: BTreeMap<String, ModelConfig>,
    pub profiles: BTreeMap<String, Profile>,
    pub default_profile: Option<String>,
}

impl Project {
    /// A project at `root` with the default layout and no models, as if it had no
    /// `llmtest.yaml` (for tools and tests that load suites on their own).
    pub fn bare(root: &Path) -> Project {
        Project {
            root: root.to_path_buf(),
            suite_paths: vec![PathBuf::from("suites")],
            snapshots: PathBuf::from("snapshots"),
            cassettes: PathBuf::from("fixtures/cassettes"),
            results: PathBuf::from("target/llmtest"),
            models: BTreeMap::new(),
            profiles: BTreeMap::new(),
            default_profile: None,
        }
    }

    /// Reads `llmtest.yaml` under `root` (a project without one has no models).
    pub fn load(root: &Path) -> Result<Project, Diagnostics> {
        let mut project = Project::bare(root);
        let rel = PathBuf::from(CONFIG_FILE);
        let Ok(src) = std::fs::read_to_string(root.join(&rel)) else {
            return Ok(project);
        };
        let file: ConfigFile = parse_yaml(&rel, &src).map_err(|d| Diagnostics(vec![d]))?;
        let mut diags = Diagnostics::default();
        if file.version.value != 1 {
            diags.push(
                Diagnostic::new(
                    loc(&rel, &file.version),
                    format!("unsupported config version {}", file.version.value),
                )
                .with_hint("this llmtest reads `version: 1`")
                .with_source(&src),
            );
        }
        if let Some(s) = file.suites {
            project.suite_paths = s.into_iter().map(PathBuf::from).collect();
        }
        if let Some(s) = file.snapshots {
            project.snapshots = s.into();
        }
        if let Some(s) = file.cassettes {
            project.cassettes = s.into();
        }
        if let Some(s) = file.results {
            project.results = s.into();
        }
        for (name, entry) in &file.models {
            match model_config(name, entry, &rel) {
                Ok(m) => {
                    project.models.insert(name.clone(), m);
                }
                Err(d) => diags.push(d.with_source(&src)),
            }
        }
        let known: Vec<&str> = file.models.keys().map(String::as_str).collect();
        for (name, p) in file.profiles {
            let mut models = Vec::new();
            match p.models {
                Some(list) => {
                    for m in list {
                        if project.models.contains_key(&m.value)
                            || file.models.contains_key(&m.value)
                        {
                            models.push(m.value);
                        } else {
                            diags.push(
                                Diagnostic::new(
                                    loc(&rel, &m),
                                    format!("profile `{name}` names unknown model `{}`", m.value),
                                )
                                .with_hint(unknown_name_hint(&m.value, known.iter().copied()))
                                .with_source(&src),
                            );
                        }
                    }
                }
                None => models = file.models.keys().cloned().collect(),
            }
            let judge = p.judge.map(|j| {
                if !file.models.contains_key(&j.value) {
                    diags.push(
                        Diagnostic::new(
                            loc(&rel, &j),
                            format!("profile `{name}` names unknown judge model `{}`", j.value),
                        )
                        .with_hint(unknown_name_hint(&j.value, known.iter().copied()))
                        .with_source(&src),
                    );
                }
                j.value
            });
            let (compare, bad) = crate::config::resolve_compare(&name, &models, p.compare, &rel);
            for d in bad {
                diags.push(d.with_source(&src));
            }
            project.profiles.insert(
                name.clone(),
                Profile {
                    name,
                    models,
                    mode: p.mode,
                    allow_known_failures: p.allow_known_failures,
                    judge,
                    compare,
                },
            );
        }
        if let Some(dp) = file.default_profile {
            if project.profiles.contains_key(&dp.value) {
                project.default_profile = Some(dp.value);
            } else {
                let names: Vec<&str> = project.profiles.keys().map(String::as_str).collect();
                diags.push(
                    Diagnostic::new(
                        loc(&rel, &dp),
                        format!("unknown default profile `{}`", dp.value),
                    )
                    .with_hint(unknown_name_hint(&dp.value, names.iter().copied()))
                    .with_source(&src),
                );
            }
        }
        if diags.is_empty() {
            Ok(project)
        } else {
            diags.sort();
            Err(diags)
        }
    }

    /// The profile to run: `name`, else `LLMTEST_PROFILE`, else the config's default, else
    /// every configured model, live.
    pub fn profile(&self, name: Option<&str>) -> Result<Profile, String> {
        let env = std::env::var("LLMTEST_PROFILE")
            .ok()
            .filter(|s| !s.is_empty());
        let chosen = name
            .map(str::to_owned)
            .or(env)
            .or_else(|| self.default_profile.clone());
        match chosen {
            Some(n) => self.profiles.get(&n).cloned().ok_or_else(|| {
                let names: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
                format!(
                    "unknown profile `{n}`; {}",
                    unknown_name_hint(&n, names.iter().copied())
                )
            }),
            None => Ok(Profile {
                name: "default".into(),
                models: self.models.keys().cloned().collect(),
                mode: RunMode::Live,
                allow_known_failures: false,
                judge: None,
                compare: Vec::new(),
            }),
        }
    }

    /// Suite files under `paths` (default: the config's suite directories), relative to the
    /// root, sorted. A path that matches nothing is an error, not a silent empty run.
    pub fn discover(&self, paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostics> {
        let roots: Vec<PathBuf> = if paths.is_empty() {
            self.suite_paths.clone()
        } else {
            paths.to_vec()
        };
        let mut out = Vec::new();
        let mut diags = Diagnostics::default();
        for p in roots {
            let rel = p
                .strip_prefix(&self.root)
                .map(Path::to_path_buf)
                .unwrap_or(p.clone());
            let abs = self.root.join(&rel);
            if abs.is_file() {
                out.push(rel);
            } else if abs.is_dir() {
                let before = out.len();
                walk(&abs, &rel, &mut out);
                if out.len() == before && !paths.is_empty() {
                    diags.push(Diagnostic::new(
                        Loc::new(&rel, 0, 0),
                        "no suite files (*.yaml, *.yml, *.json) here",
                    ));
                }
            } else {
                diags.push(
                    Diagnostic::new(Loc::new(&rel, 0, 0), "no such suite file or directory")
                        .with_hint("paths are relative to the project root"),
                );
            }
        }
        out.sort();
        out.dedup();
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }
}

fn walk(abs: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(abs) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name_s = name.to_string_lossy();
        if name_s.starts_with('.') || name_s == "data" {
            // `data/` beside suites holds cases_from files, not suites.
            continue;
        }
        let (a, r) = (e.path(), rel.join(&name));
        if a.is_dir() {
            walk(&a, &r, out);
        } else if is_suite_file(&r) {
            out.push(r);
        }
    }
}

fn is_suite_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn loc<T>(file: &Path, s: &Spanned<T>) -> Loc {
    Loc::from_saphyr(file, &s.referenced)
}

fn model_config(
    name: &str,
    entry: &Spanned<Value>,
    file: &Path,
) -> Result<ModelConfig, Diagnostic> {
    let l = loc(file, entry);
    let Value::Object(map) = &entry.value else {
        return Err(
            Diagnostic::new(l, format!("model `{name}` must be a mapping"))
                .with_hint("e.g. `{backend: openai, provider: vllm}`"),
        );
    };
    let backend = match map.get("backend") {
        Some(Value::String(b)) => b.clone(),
        _ => {
            return Err(
                Diagnostic::new(l, format!("model `{name}` has no `backend`")).with_hint(
                    "add `backend: openai` (or onnx, exec, outputs, or a plugin's name)",
                ),
            );
        }
    };
    let max_concurrency = match map.get("max_concurrency") {
        None => 4,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => n as usize,
            _ => {
                return Err(Diagnostic::new(
                    l,
                    format!("model `{name}`: `max_concurrency` must be a whole number ≥ 1"),
                ));
            }
        },
    };
    let params = match map.get("params") {
        None => GenParams::default(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            Diagnostic::new(l.clone(), format!("model `{name}`: invalid `params`: {e}"))
        })?,
    };
    let description = map
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let suites = match map.get("suites") {
        None => None,
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Some(_) => {
            return Err(Diagnostic::new(
                l,
                format!("model `{name}`: `suites` must be a list of suite names"),
            ));
        }
    };
    let options: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !MODEL_COMMON_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(ModelConfig {
        name: name.to_owned(),
        backend,
        max_concurrency,
        params,
        description,
        suites,
        options,
        loc: l,
    })
}

/// Parse YAML (or JSON, which this parser reads too) into `T`, turning the first error into a
/// located diagnostic with a "did you mean" hint for unknown keys.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &Path,
    src: &str,
) -> Result<T, Diagnostic> {
    serde_saphyr::from_str::<T>(src).map_err(|e| saphyr_diag(file, src, &e))
}

fn saphyr_diag(file: &Path, src: &str, err: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::Error as E;
    let mut e = err;
    while let E::WithSnippet { error, .. } = e {
        e = error;
    }
    let l = e
        .location()
        .map(|l| Loc::from_saphyr(file, &l))
        .unwrap_or_else(|| Loc::new(file, 0, 0));
    let d = match e {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            let hint = if expected.is_empty() {
                "this mapping takes no keys".to_string()
            } else {
                unknown_name_hint(field, expected.iter().copied())
            };
            Diagnostic::new(l, format!("unknown key `{field}`")).with_hint(hint)
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => Diagnostic::new(l, format!("unknown value `{variant}`"))
            .with_hint(unknown_name_hint(variant, expected.iter().copied())),
        E::SerdeMissingField { field, .. } => {
            Diagnostic::new(l, format!("missing required key `{field}`"))
        }
        other => {
            let msg = other.to_string();
            let first = msg.lines().next().unwrap_or("invalid input").trim();
            let first = strip_at_line(first);
            let mut d = Diagnostic::new(l.clone(), lowercase_first(first));
            if let Some(h) = shape_hint(first, src, l.line, l.col) {
                d = d.with_hint(h);
            }
            d
        }
    };
    d.with_source(src)
}

/// A hint for a list where a mapping belongs, or the reverse, naming the key that owns it.
fn shape_hint(msg: &str, src: &str, line: u32, col: u32) -> Option<String> {
    let lines: Vec<&str> = src.lines().collect();
    let here = lines.get((line as usize).checked_sub(1)?)?;
    let at: String = here
        .chars()
        .skip((col as usize).saturating_sub(1))
        .collect();
    let indent = |s: &str| s.len() - s.trim_start().len();
    // `key: <here>`: the value of a key on this same line
    let before: String = here
        .chars()
        .take((col as usize).saturating_sub(1))
        .collect();
    let inline_key = before
        .trim_end()
        .strip_suffix(':')
        .map(|k| k.trim().trim_start_matches("- ").trim().to_owned())
        .filter(|k| !k.is_empty() && !k.contains([' ', '{', ',']));
    // else the owning key: the nearest line above, less indented, of the form `key:`
    let owner = lines[..line as usize - 1]
        .iter()
        .rev()
        .filter(|s| !s.trim().is_empty() && !s.trim_start().starts_with('#'))
        .find(|s| indent(s) < indent(here) || (indent(s) == indent(here) && at.starts_with("- ")))
        .and_then(|s| s.trim().trim_start_matches("- ").split(':').next())
        .map(|k| format!("`{}`", k.trim()))
        .unwrap_or_else(|| "this key".to_owned());
    let owner = match &inline_key {
        Some(k) => format!("`{k}`"),
        None => owner,
    };
    let msg = msg.to_lowercase();
    if msg.contains("expected mapping")
        || msg.contains("expected a map")
        || msg.contains("expected struct")
    {
        if at.starts_with("- ") {
            let extra = if owner == "`models`" {
                ": name each model by its key (`my-model:`) with its settings indented below"
            } else {
                ""
            };
            return Some(format!(
                "{owner} takes a mapping (`key: value` lines), not a list{extra}"
            ));
        }
        return Some(format!("{owner} takes a mapping (`key: value` lines)"));
    }
    if msg.contains("expected sequence") || msg.contains("expected a sequence") {
        return Some(format!("{owner} takes a list: `- item` lines or `[a, b]`"));
    }
    // a scalar of the wrong kind
    let key = match inline_key {
        Some(k) => format!("`{k}`"),
        None => "this key".to_owned(),
    };
    if [
        "invalid u8",
        "invalid u16",
        "invalid u32",
        "invalid u64",
        "invalid usize",
    ]
    .iter()
    .any(|p| msg.starts_with(p))
    {
        return Some(format!("{key} takes a whole number, 0 or more"));
    }
    if msg.starts_with("invalid i") {
        return Some(format!("{key} takes a whole number"));
    }
    if msg.starts_with("invalid f") {
        return Some(format!("{key} takes a number"));
    }
    None
}

fn strip_at_line(s: &str) -> &str {
    match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => s,
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) if !s.starts_with("YAML") => f.to_lowercase().chain(c).collect(),
        _ => s.to_owned(),
    }
}

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

struct SuiteCtx<'a> {
    rel: &'a Path,
    src: &'a str,
    project: &'a Project,
    templates: &'a Templates,
    check: &'a dyn AssertionCheck,
    /// Build only this case (see [`load_suites_filtered`]).
    only_case: Option<&'a str>,
    /// The suite's `defaults.judge`, given to model-graded assertions that name none.
    judge: Option<String>,
    diags: Diagnostics,
}

impl SuiteCtx<'_> {
    fn err(&mut self, l: Loc, msg: impl Into<String>, hint: Option<String>) {
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
            for case in self.import(cf, &f, &default_expect) {
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
                    Some("its cases are the `perf:` scenarios; put accuracy cases in another suite".into()),
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

    fn build_prompt(
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

    fn render(&mut self, tpl: &str, vars: &Map<String, Value>, l: Loc) -> Option<String> {
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
    fn assertion(
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

    fn rerender(&mut self, a: &AssertionSpec, vars: &Map<String, Value>) -> AssertionSpec {
        let mut out = a.clone();
        for v in out.params.values_mut() {
            self.render_value(v, vars, &a.loc);
        }
        out
    }

    fn render_value(&mut self, v: &mut Value, vars: &Map<String, Value>, l: &Loc) {
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

    fn import(
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
            let mut expect: Vec<AssertionSpec> = default_expect
                .iter()
                .map(|a| self.rerender(a, &vars))
                .collect();
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

/// The keys an assertion entry may have besides its type's own parameters.
const ASSERTION_META: &[&str] = &["type", "not", "weight"];

/// Parses one assertion entry: `{type: contains, value: …, weight: 2}`,
/// `{type: not-contains, …}` or `{not: {type: contains, …}}`.
pub fn parse_assertion(v: &Value, l: Loc) -> Result<AssertionSpec, (String, Option<String>)> {
    let Value::Object(map) = v else {
        return Err((
            "an assertion must be a mapping".into(),
            Some("e.g. `{type: contains, value: \"142\"}`".into()),
        ));
    };
    let weight = match map.get("weight") {
        None => 1.0,
        Some(w) => match w.as_f64() {
            Some(w) if w.is_finite() && w >= 0.0 => w,
            _ => return Err(("`weight` must be a finite number ≥ 0".into(), None)),
        },
    };
    if let Some(inner) = map.get("not") {
        if let Some(extra) = map.keys().find(|k| *k != "not" && *k != "weight") {
            return Err((
                format!("unexpected key `{extra}` beside `not`"),
                Some("put the assertion's keys inside `not: {…}`".into()),
            ));
        }
        let mut spec = parse_assertion(inner, l)?;
        spec.negate = !spec.negate;
        spec.weight = weight;
        return Ok(spec);
    }
    let kind = match map.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(("`type` must be a string".into(), None)),
        None => {
            let hint = map
                .keys()
                .find_map(|k| did_you_mean(k, ASSERTION_META.iter().copied()));
            return Err((
                "assertion has no `type`".into(),
                hint.or(Some("e.g. `type: contains`".into())),
            ));
        }
    };
    let (kind, negate) = match kind.strip_prefix("not-") {
        Some(k) => (k.to_owned(), true),
        None => (kind, false),
    };
    let params = map
        .iter()
        .filter(|(k, _)| !ASSERTION_META.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(AssertionSpec {
        kind,
        negate,
        weight,
        params,
        loc: l,
    })
}
