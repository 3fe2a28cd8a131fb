//! The project: `llmtest.yaml` read into models and profiles, and suite files discovered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::loc;
use super::yaml::parse_yaml;
use crate::config::{ConfigFile, MODEL_COMMON_KEYS, ModelConfig, Profile, RunMode};
use crate::diag::{Diagnostic, Diagnostics, Loc, unknown_name_hint};
use crate::types::GenParams;

/// The name of the project config file at the project root.
pub const CONFIG_FILE: &str = "llmtest.yaml";

/// A project: its root, `llmtest.yaml` resolved.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
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
