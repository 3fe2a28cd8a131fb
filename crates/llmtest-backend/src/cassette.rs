//! Cassettes: recorded responses, committed so CI runs offline with no GPU and no keys.
//!
//! One JSON Lines file per model and suite, `<cassettes>/<model>/<suite>.jsonl`, one entry
//! per request, sorted by case id. An entry is keyed by a BLAKE3 hash of the canonical JSON
//! of model name + rendered prompt + parameters + n, so editing a prompt or a parameter is a
//! miss (re-record), while renaming a case is not.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::secret::redact_secrets;
use crate::types::{Backend, InfraError, InfraKind, Request, Response};

/// The cassette key of a request.
pub fn cassette_key(req: &Request) -> String {
    let v = serde_json::json!({
        "model": req.model,
        "prompt": req.prompt,
        "params": req.params,
        "n": req.n,
    });
    let canon = canonical(&v);
    blake3::hash(canon.as_bytes()).to_hex()[..32].to_owned()
}

/// JSON with object keys sorted at every level: the same value always gives the same text.
pub fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).expect("json serializes")
}

/// One recorded request and its response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    pub suite: String,
    pub case_id: String,
    pub request: Request,
    pub response: Response,
}

fn file_for(dir: &Path, model: &str, suite: &str) -> PathBuf {
    dir.join(sanitize(model))
        .join(format!("{}.jsonl", sanitize(suite)))
}

/// File-system-safe name (model names like `Qwen/Qwen2.5-7B` keep their shape).
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn read_entries(path: &Path) -> Result<Vec<Entry>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| format!("{}:{}: invalid cassette entry: {e}", path.display(), i + 1))
        })
        .collect()
}

/// A cassette line by its key, parsed in full only when its request comes: a process that
/// runs one trial (nextest) decodes one entry, not the suite's thousand.
#[derive(serde::Deserialize)]
struct KeyOnly {
    key: String,
}

/// One line of a cassette file, kept as text until it is replayed.
struct Line {
    number: usize,
    text: String,
}

fn index_entries(path: &Path) -> Result<HashMap<String, Line>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut out = HashMap::new();
    for (i, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        // Recorded lines start with their key (hex, no escapes): read it without parsing.
        let fast = l
            .strip_prefix("{\"key\":\"")
            .and_then(|r| r.split_once('"'))
            .map(|(k, _)| k)
            .filter(|k| k.bytes().all(|b| b.is_ascii_alphanumeric()));
        let key = match fast {
            Some(k) => k.to_owned(),
            None => {
                serde_json::from_str::<KeyOnly>(l)
                    .map_err(|e| {
                        format!("{}:{}: invalid cassette entry: {e}", path.display(), i + 1)
                    })?
                    .key
            }
        };
        out.insert(
            key,
            Line {
                number: i + 1,
                text: l.to_owned(),
            },
        );
    }
    Ok(out)
}

/// Answers from cassettes; never touches the network. A suite's cassette file is read on
/// the first request of that suite, so a process that runs one trial reads one file.
pub struct ReplayBackend {
    model: String,
    dir: PathBuf,
    display_dir: PathBuf,
    suites: Mutex<HashMap<String, Arc<HashMap<String, Line>>>>,
}

impl ReplayBackend {
    /// Replays `model`'s cassettes under `dir`. `display_dir` is how `dir` is named in
    /// messages (relative to the project root).
    pub fn open(dir: &Path, display_dir: &Path, model: &str) -> Result<ReplayBackend, String> {
        Ok(ReplayBackend {
            model: model.to_owned(),
            dir: dir.to_path_buf(),
            display_dir: display_dir.to_path_buf(),
            suites: Mutex::new(HashMap::new()),
        })
    }

    fn suite(&self, suite: &str) -> Result<Arc<HashMap<String, Line>>, String> {
        if let Some(m) = self.suites.lock().expect("cassettes").get(suite) {
            return Ok(m.clone());
        }
        let entries = Arc::new(index_entries(&file_for(&self.dir, &self.model, suite))?);
        self.suites
            .lock()
            .expect("cassettes")
            .insert(suite.to_owned(), entries.clone());
        Ok(entries)
    }

    /// Number of recorded requests in all of the model's cassettes.
    pub fn len(&self) -> usize {
        let mdir = self.dir.join(sanitize(&self.model));
        let Ok(rd) = std::fs::read_dir(&mdir) else {
            return 0;
        };
        rd.filter_map(Result::ok)
            .filter_map(|e| {
                e.path()
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_owned)
            })
            .filter_map(|suite| self.suite(&suite).ok())
            .map(|m| m.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait::async_trait]
impl Backend for ReplayBackend {
    async fn generate(&self, req: &Request) -> Result<Response, InfraError> {
        let key = cassette_key(req);
        let entries = self
            .suite(&req.suite)
            .map_err(|e| InfraError::new(InfraKind::Other, e))?;
        match entries.get(&key) {
            Some(line) => {
                let e: Entry = serde_json::from_str(&line.text).map_err(|e| {
                    let file = file_for(&self.display_dir, &self.model, &req.suite);
                    InfraError::new(
                        InfraKind::Other,
                        format!(
                            "{}:{}: invalid cassette entry: {e}",
                            file.display(),
                            line.number
                        ),
                    )
                })?;
                let mut r = e.response;
                r.timings.replayed = true;
                Ok(r)
            }
            None => {
                let file = file_for(&self.display_dir, &self.model, &req.suite);
                Err(InfraError::new(
                    InfraKind::Missing,
                    format!(
                        "no cassette for case `{}` of suite `{}` on model `{}` (key {key}, looked in {}); \
                         the prompt or parameters changed or it was never recorded: run `llmtest record --model {} {}` against a live backend",
                        req.case_id,
                        req.suite,
                        self.model,
                        file.display(),
                        self.model,
                        req.suite
                    ),
                ))
            }
        }
    }

    fn facts(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("replayed".into(), Value::Bool(true));
        m
    }
}

/// Wraps a live backend and writes every response into cassettes at shutdown.
pub struct RecordBackend {
    inner: Arc<dyn Backend>,
    model: String,
    dir: PathBuf,
    recorded: Mutex<Vec<Entry>>,
}

impl RecordBackend {
    pub fn new(inner: Arc<dyn Backend>, dir: &Path, model: &str) -> Self {
        RecordBackend {
            inner,
            model: model.to_owned(),
            dir: dir.to_path_buf(),
            recorded: Mutex::new(Vec::new()),
        }
    }

    /// Writes what was recorded, merging with existing cassettes (an entry with the same key
    /// is replaced). Returns the files written.
    pub fn flush(&self) -> Result<Vec<PathBuf>, String> {
        let recorded = std::mem::take(&mut *self.recorded.lock().expect("recording"));
        let mut by_suite: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        for e in recorded {
            by_suite.entry(e.suite.clone()).or_default().push(e);
        }
        let mut written = Vec::new();
        for (suite, new) in by_suite {
            let path = file_for(&self.dir, &self.model, &suite);
            let mut all: BTreeMap<(String, String), Entry> = BTreeMap::new();
            for e in read_entries(&path)?.into_iter().chain(new) {
                all.insert((e.case_id.clone(), e.key.clone()), e);
            }
            let mut out = String::new();
            for e in all.values() {
                out.push_str(&serde_json::to_string(e).map_err(|e| e.to_string())?);
                out.push('\n');
            }
            let out = redact_secrets(&out);
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p)
                    .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
            }
            std::fs::write(&path, out)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }
}

#[async_trait::async_trait]
impl Backend for RecordBackend {
    async fn generate(&self, req: &Request) -> Result<Response, InfraError> {
        let resp = self.inner.generate(req).await?;
        let entry = Entry {
            key: cassette_key(req),
            suite: req.suite.clone(),
            case_id: req.case_id.clone(),
            request: req.clone(),
            response: resp.clone(),
        };
        self.recorded.lock().expect("recording").push(entry);
        Ok(resp)
    }

    fn facts(&self) -> Map<String, Value> {
        self.inner.facts()
    }

    async fn shutdown(&self) {
        if let Err(e) = self.flush() {
            eprintln!(
                "llmtest: failed to write cassettes for model `{}`: {e}",
                self.model
            );
        }
        self.inner.shutdown().await;
    }
}
