//! Cassettes: recorded responses, committed so CI runs offline with no GPU and no keys.
//!
//! One JSON Lines file per model and suite, `<cassettes>/<model>/<suite>.jsonl`, one entry
//! per request, sorted by case id. An entry is keyed by a BLAKE3 hash of the canonical JSON
//! of model name + rendered prompt + parameters + n, so editing a prompt or a parameter is a
//! miss (re-record), while renaming a case is not.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::filecache::{self, Derived};
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
#[derive(Clone)]
struct Line {
    number: usize,
    text: String,
}

fn index_entries(path: &Path) -> Result<HashMap<String, Line>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => index_text(&t, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// A recorded line's key read without parsing (lines start with their key: hex, no escapes).
fn fast_key(line: &str) -> Option<&str> {
    line.strip_prefix("{\"key\":\"")
        .and_then(|r| r.split_once('"'))
        .map(|(k, _)| k)
        .filter(|k| k.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn index_text(text: &str, path: &Path) -> Result<HashMap<String, Line>, String> {
    let mut out = HashMap::new();
    for (i, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let key = match fast_key(l) {
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

/// The sealed kind of a cassette index file (see [`crate::filecache`]).
const INDEX_KIND: &str = "llmtest-cassette-index/2";
/// An index record: the 32-digit key, the line's byte offset, its length and its number,
/// fixed width so that a lookup is a binary search over the file's bytes.
const KEY_LEN: usize = 32;
const RECORD: usize = KEY_LEN + 1 + 12 + 1 + 10 + 1 + 8 + 1;

/// Where a cassette's lines are, by key, as of one version of the file. Kept beside the
/// cache of the plan; the cassette itself stays the only source of answers: a line found
/// through the index must still start with the key it is read for.
struct Index {
    /// Sorted fixed-width records.
    records: Vec<u8>,
}

impl Index {
    /// The records of an index of `text`, or `None` when some line does not start with a
    /// plain 32-digit key (then the whole file is read each time, as without an index).
    fn build(text: &str) -> Option<Vec<u8>> {
        let mut recs: Vec<(&str, usize, usize, usize)> = Vec::new();
        let mut offset = 0;
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            let l = raw.strip_suffix('\n').unwrap_or(raw);
            let l = l.strip_suffix('\r').unwrap_or(l);
            if !l.trim().is_empty() {
                let key = fast_key(l).filter(|k| k.len() == KEY_LEN)?;
                recs.push((key, offset, l.len(), i + 1));
            }
            offset += raw.len();
        }
        recs.sort_by(|a, b| a.0.cmp(b.0));
        // A key recorded twice resolves to its last line, as the map does.
        recs.dedup_by(|later, earlier| {
            later.0 == earlier.0 && {
                std::mem::swap(later, earlier);
                true
            }
        });
        let mut records = Vec::with_capacity(recs.len() * RECORD);
        for (key, off, len, line) in recs {
            records.extend_from_slice(format!("{key} {off:012} {len:010} {line:08}\n").as_bytes());
        }
        Some(records)
    }

    /// (byte offset, length, line number) of `key`'s line.
    fn find(&self, key: &str) -> Option<(u64, usize, usize)> {
        let n = self.records.len() / RECORD;
        let rec = |i: usize| &self.records[i * RECORD..(i + 1) * RECORD];
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match rec(mid)[..KEY_LEN].cmp(key.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let fields = std::str::from_utf8(&rec(mid)[KEY_LEN + 1..RECORD - 1]).ok()?;
                    let mut f = fields.split(' ');
                    return Some((
                        f.next()?.parse().ok()?,
                        f.next()?.parse().ok()?,
                        f.next()?.parse().ok()?,
                    ));
                }
            }
        }
        None
    }
}

/// A suite's cassette as one process holds it.
enum Cassette {
    /// Every line, by key (read in full).
    Lines(HashMap<String, Line>),
    /// Only the index: a lookup reads one line of the file.
    Indexed { path: PathBuf, index: Index },
}

impl Cassette {
    /// The line of `key`; `Err` when the index no longer matches the file (it changed under
    /// the same stamp), and the file must be read in full.
    fn line(&self, key: &str) -> Result<Option<Line>, ()> {
        match self {
            Cassette::Lines(m) => Ok(m.get(key).cloned()),
            Cassette::Indexed { path, index } => {
                let Some((offset, len, number)) = index.find(key) else {
                    return Ok(None);
                };
                let text = read_range(path, offset, len).ok_or(())?;
                let ok = fast_key(&text) == Some(key)
                    && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
                if ok {
                    Ok(Some(Line { number, text }))
                } else {
                    Err(())
                }
            }
        }
    }
}

fn read_range(path: &Path, offset: u64, len: usize) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// Where [`ReplayBackend::open`] keeps cassette indexes, when a harness has set it.
static INDEX_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Keeps an index of every replayed cassette under `dir` (the harness sets this to its cache
/// under `target/`, once, before any backend opens): a process that replays one case then
/// reads its one line instead of the whole file. Without it cassettes are read in full.
pub fn set_cassette_index_dir(dir: PathBuf) {
    let _ = INDEX_DIR.set(dir);
}

/// Answers from cassettes; never touches the network. A suite's cassette file is read on
/// the first request of that suite, so a process that runs one trial reads one file (with a
/// cassette index, one line of it).
pub struct ReplayBackend {
    model: String,
    dir: PathBuf,
    display_dir: PathBuf,
    index_dir: Option<PathBuf>,
    suites: Mutex<HashMap<String, Arc<Cassette>>>,
}

impl ReplayBackend {
    /// Replays `model`'s cassettes under `dir`. `display_dir` is how `dir` is named in
    /// messages (relative to the project root).
    pub fn open(dir: &Path, display_dir: &Path, model: &str) -> Result<ReplayBackend, String> {
        Ok(ReplayBackend {
            model: model.to_owned(),
            dir: dir.to_path_buf(),
            display_dir: display_dir.to_path_buf(),
            index_dir: INDEX_DIR.get().cloned(),
            suites: Mutex::new(HashMap::new()),
        })
    }

    /// Keeps cassette indexes under `dir` (instead of where [`set_cassette_index_dir`] said).
    pub fn with_index_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.index_dir = Some(dir.into());
        self
    }

    fn suite(&self, suite: &str) -> Result<Arc<Cassette>, String> {
        if let Some(m) = self.suites.lock().expect("cassettes").get(suite) {
            return Ok(m.clone());
        }
        let c = Arc::new(self.load(&file_for(&self.dir, &self.model, suite))?);
        self.suites
            .lock()
            .expect("cassettes")
            .insert(suite.to_owned(), c.clone());
        Ok(c)
    }

    /// The cassette at `path`: through its index when the index is of this version of the
    /// file, else read in full (and the index rebuilt).
    fn load(&self, path: &Path) -> Result<Cassette, String> {
        let Some(dir) = &self.index_dir else {
            return index_entries(path).map(Cassette::Lines);
        };
        let entry = dir.join(filecache::entry_name(path, "idx"));
        match filecache::derived(INDEX_KIND, path, &entry, Index::build) {
            Some(Derived::Cached(records)) if records.len() % RECORD == 0 => {
                Ok(Cassette::Indexed {
                    path: path.to_path_buf(),
                    index: Index { records },
                })
            }
            Some(Derived::Read(text)) => index_text(&text, path).map(Cassette::Lines),
            // Unreadable (its error comes from the full read), or an entry of another format.
            _ => index_entries(path).map(Cassette::Lines),
        }
    }

    /// The recorded line of `key` in `suite`'s cassette.
    fn line(&self, suite: &str, key: &str) -> Result<Option<Line>, String> {
        let c = self.suite(suite)?;
        match c.line(key) {
            Ok(l) => Ok(l),
            Err(()) => {
                // The file changed under its stamp: read it in full from now on.
                let path = file_for(&self.dir, &self.model, suite);
                let c = Arc::new(index_entries(&path).map(Cassette::Lines)?);
                self.suites
                    .lock()
                    .expect("cassettes")
                    .insert(suite.to_owned(), c.clone());
                Ok(c.line(key).unwrap_or(None))
            }
        }
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
            .map(|c| match &*c {
                Cassette::Lines(m) => m.len(),
                Cassette::Indexed { index, .. } => index.records.len() / RECORD,
            })
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
        let line = self
            .line(&req.suite, &key)
            .map_err(|e| InfraError::new(InfraKind::Other, e))?;
        match line {
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

#[cfg(test)]
mod tests {
    use super::*;
    use llmtest_spec::{GenParams, Prompt};

    fn request(case: &str) -> Request {
        Request {
            model: "m".into(),
            suite: "s".into(),
            case_id: case.into(),
            prompt: Prompt::Completion(format!("question {case}")),
            params: GenParams::default(),
            n: 1,
        }
    }

    /// Writes the cassette of suite `s` on model `m` with `answers` (case, text).
    fn write(dir: &Path, answers: &[(&str, &str)]) {
        let mut out = String::new();
        for (case, text) in answers {
            let req = request(case);
            let resp = Response::untimed(
                vec![crate::Choice {
                    text: (*text).into(),
                    ..Default::default()
                }],
                std::time::Instant::now(),
            );
            let e = Entry {
                key: cassette_key(&req),
                suite: "s".into(),
                case_id: (*case).into(),
                request: req,
                response: resp,
            };
            out.push_str(&serde_json::to_string(&e).unwrap());
            out.push('\n');
        }
        std::fs::create_dir_all(dir.join("m")).unwrap();
        std::fs::write(dir.join("m/s.jsonl"), out).unwrap();
    }

    /// A fresh backend, as a new process would open it.
    fn answer(dir: &Path, idx: &Path, case: &str) -> Result<String, InfraError> {
        let b = ReplayBackend::open(dir, Path::new("c"), "m")
            .unwrap()
            .with_index_dir(idx);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(b.generate(&request(case)))
            .map(|r| r.choices[0].text.clone())
    }

    fn index_files(idx: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(idx)
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_index_is_built_then_used_and_a_changed_cassette_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let idx = dir.path().join("idx");
        write(dir.path(), &[("a", "one"), ("b", "two"), ("c", "three")]);
        assert_eq!(answer(dir.path(), &idx, "b").unwrap(), "two");
        let files = index_files(&idx);
        assert_eq!(files.len(), 1, "the first process writes the index");
        let second = ReplayBackend::open(dir.path(), Path::new("c"), "m")
            .unwrap()
            .with_index_dir(&idx);
        assert!(
            matches!(*second.suite("s").unwrap(), Cassette::Indexed { .. }),
            "the next one reads lines through it"
        );
        // Through the index: every key, and a miss stays a miss.
        for (case, text) in [("a", "one"), ("b", "two"), ("c", "three")] {
            assert_eq!(answer(dir.path(), &idx, case).unwrap(), text);
        }
        let miss = answer(dir.path(), &idx, "zzz").unwrap_err();
        assert_eq!(miss.kind, InfraKind::Missing);
        // A re-recorded cassette (another answer, lines shifted) is what the next process sees.
        write(dir.path(), &[("a", "uno, longer now"), ("c", "tres")]);
        assert_eq!(answer(dir.path(), &idx, "c").unwrap(), "tres");
        assert_eq!(answer(dir.path(), &idx, "a").unwrap(), "uno, longer now");
        assert_eq!(
            answer(dir.path(), &idx, "b").unwrap_err().kind,
            InfraKind::Missing
        );
    }

    #[test]
    fn a_corrupt_or_foreign_index_is_ignored_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let idx = dir.path().join("idx");
        write(dir.path(), &[("a", "one"), ("b", "two")]);
        answer(dir.path(), &idx, "a").unwrap();
        let file = index_files(&idx).remove(0);
        let good = std::fs::read(&file).unwrap();
        // Garbage, a truncated copy, and a well-sealed index of another cassette.
        let other = tempfile::tempdir().unwrap();
        write(other.path(), &[("b", "not this one"), ("a", "nor this")]);
        let other_idx = other.path().join("idx");
        answer(other.path(), &other_idx, "a").unwrap();
        let foreign = std::fs::read(index_files(&other_idx).remove(0)).unwrap();
        for bad in [
            b"garbage".to_vec(),
            good[..good.len() - 7].to_vec(),
            foreign,
        ] {
            std::fs::write(&file, &bad).unwrap();
            assert_eq!(answer(dir.path(), &idx, "b").unwrap(), "two");
            assert_eq!(
                std::fs::read(&file).unwrap(),
                good,
                "the index is rebuilt as it was"
            );
        }
    }

    #[test]
    fn an_index_that_points_at_the_wrong_line_is_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        let idx = dir.path().join("idx");
        write(dir.path(), &[("a", "one"), ("b", "two")]);
        answer(dir.path(), &idx, "a").unwrap();
        // Same length, same modification time, other content: the stamp cannot tell.
        let path = dir.path().join("m/s.jsonl");
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let swapped: Vec<&str> = text.lines().rev().collect();
        std::fs::write(&path, swapped.join("\n") + "\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(before)
            .unwrap();
        assert_eq!(answer(dir.path(), &idx, "a").unwrap(), "one");
        assert_eq!(answer(dir.path(), &idx, "b").unwrap(), "two");
    }
}
