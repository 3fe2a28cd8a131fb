//! The results schema (`--format json`), versioned. One [`CaseResult`] per case × model, one
//! [`SampleResult`] per generation. Documented field by field in `docs/results-schema.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use llmtest_backend::{InfraError, Timings, Usage};
use llmtest_grade::{AssertionResult, Outcome};

use crate::engine::Work;

/// Bumped on any incompatible change of the JSON results.
pub const RESULTS_SCHEMA_VERSION: u32 = 1;

/// A whole run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunResults {
    pub schema_version: u32,
    pub llmtest_version: String,
    pub profile: String,
    /// `live`, `replay` or `record`.
    pub mode: String,
    pub models: Vec<ModelInfo>,
    pub cases: Vec<CaseResult>,
    pub summary: Summary,
    /// What configuration produced this run (for `llmtest merge`); absent in files written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<RunIdentity>,
}

/// The configuration a run came from: shards of one run agree on all of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunIdentity {
    /// A hash of the models' configuration (backend, parameters, options).
    pub config: String,
    /// Suite name → a hash of its cases, prompts and assertions.
    pub suites: BTreeMap<String, String>,
    /// Items of the whole (unsharded) run.
    pub items: usize,
    /// `K/N` when this file is one shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
}

/// A model as it ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelInfo {
    pub name: String,
    pub backend: String,
    /// Set when the model did not run at all (missing credential, backend unavailable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Facts from the backend (server start-up time, peak memory, GPU, execution provider).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub facts: Map<String, Value>,
}

/// One case on one model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaseResult {
    pub suite: String,
    pub case: String,
    pub model: String,
    pub outcome: Outcome,
    /// Mean of the samples' scores.
    pub score: f64,
    /// The case's weight in its suite's score.
    pub weight: f64,
    pub samples: Vec<SampleResult>,
    /// pass@k for the suite's requested k (when the case has enough samples).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pass_at_k: BTreeMap<String, f64>,
    /// The infrastructure error, when the outcome is `infra_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<InfraError>,
    /// Why the case was skipped, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
    /// Per-request facts from the backend (replica, execution provider, …).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub facts: Map<String, Value>,
    /// A perf case's figures (TTFT, TPOT, ITL, E2E, throughput, failures, resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf: Option<Box<crate::perf::PerfReport>>,
    /// What the judge calls of model-graded assertions cost (apart from `usage`/`timings`,
    /// which are the candidate's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<crate::judge::JudgeUsage>,
}

impl CaseResult {
    /// `w`'s result with `outcome` and nothing measured: no samples, no usage, score 0.
    pub(crate) fn empty(w: &Work, outcome: Outcome) -> CaseResult {
        CaseResult {
            suite: w.suite.name.clone(),
            case: w.case().id.clone(),
            model: w.model.clone(),
            outcome,
            score: 0.0,
            weight: w.case().weight,
            samples: Vec::new(),
            pass_at_k: BTreeMap::new(),
            error: None,
            skipped: None,
            usage: None,
            timings: None,
            facts: Map::new(),
            perf: None,
            judge: None,
        }
    }

    /// `w` was not run, for `reason` (its model has no credentials, its backend declined).
    pub(crate) fn skipped(w: &Work, reason: String) -> CaseResult {
        CaseResult {
            skipped: Some(reason),
            ..CaseResult::empty(w, Outcome::Skipped)
        }
    }

    /// `w` could not be asked or graded: the infrastructure's failure, not the model's.
    pub(crate) fn infra(w: &Work, error: InfraError) -> CaseResult {
        CaseResult {
            error: Some(error),
            ..CaseResult::empty(w, Outcome::InfraError)
        }
    }
}

/// One generation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SampleResult {
    pub index: u32,
    pub outcome: Outcome,
    pub score: f64,
    /// The graded text (reasoning removed).
    pub answer: String,
    /// The text exactly as produced.
    pub output: String,
    /// The first value an assertion extracted (the number read, the final math answer, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extracted: Option<String>,
    /// The reasoning text, kept for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    pub reasoning_chars: usize,
    /// `none`, `stripped` or `unterminated`.
    pub reasoning_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    pub assertions: Vec<AssertionResult>,
}

/// Counts by outcome and per model × suite pass rates.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Summary {
    pub total: usize,
    pub by_outcome: BTreeMap<String, usize>,
    /// `model` → `suite` → cell.
    pub matrix: BTreeMap<String, BTreeMap<String, Cell>>,
}

/// One model × suite cell of the matrix.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cell {
    pub passed: usize,
    pub failed: usize,
    pub infra: usize,
    pub skipped: usize,
    /// Weighted mean score over the graded cases.
    pub score: f64,
    /// Median time to first token over live (not replayed) requests, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms_p50: Option<f64>,
    /// Median output tokens/s over live requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_s_p50: Option<f64>,
}

impl Summary {
    pub fn from_cases(cases: &[CaseResult]) -> Summary {
        let mut s = Summary {
            total: cases.len(),
            ..Summary::default()
        };
        let mut weights: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
        let mut lat: BTreeMap<(String, String), (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for c in cases {
            *s.by_outcome
                .entry(c.outcome.as_str().to_owned())
                .or_default() += 1;
            let cell = s
                .matrix
                .entry(c.model.clone())
                .or_default()
                .entry(c.suite.clone())
                .or_default();
            match c.outcome {
                Outcome::Pass => cell.passed += 1,
                o if o.is_infra() => cell.infra += 1,
                Outcome::Skipped => cell.skipped += 1,
                _ => cell.failed += 1,
            }
            let key = (c.model.clone(), c.suite.clone());
            if c.outcome.is_model_failure() || c.outcome == Outcome::Pass {
                let w = weights.entry(key.clone()).or_default();
                w.0 += c.weight * c.score;
                w.1 += c.weight;
            }
            if let Some(t) = c.timings.as_ref().filter(|t| !t.replayed) {
                let l = lat.entry(key).or_default();
                l.0.extend(t.ttft_ms);
                l.1.extend(t.tokens_per_s);
            }
        }
        for ((m, su), (ws, w)) in weights {
            if let Some(cell) = s.matrix.get_mut(&m).and_then(|x| x.get_mut(&su)) {
                cell.score = if w > 0.0 { ws / w } else { 0.0 };
            }
        }
        for ((m, su), (ttft, tps)) in lat {
            if let Some(cell) = s.matrix.get_mut(&m).and_then(|x| x.get_mut(&su)) {
                cell.ttft_ms_p50 = median(ttft);
                cell.tokens_per_s_p50 = median(tps);
            }
        }
        s
    }

    /// Documented exit code: 0 all passed, 1 some case failed, 3 infrastructure errors
    /// (which take precedence: the results are incomplete). 2 (invalid input) is decided
    /// before anything runs.
    pub fn exit_code(&self) -> u8 {
        let n = |k: &str| self.by_outcome.get(k).copied().unwrap_or(0);
        if n("infra_error") + n("judge_error") > 0 {
            3
        } else if n("fail")
            + n("unterminated_reasoning")
            + n("code_timeout")
            + n("code_error")
            + n("unstable")
            > 0
        {
            1
        } else {
            0
        }
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Why a results file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}:{column}: not a results file: {source}\n  hint: `llmtest run` writes one under the project's results directory (results.json)"
    )]
    Json {
        path: String,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path}: results schema version {found}; this llmtest reads version {RESULTS_SCHEMA_VERSION}\n  hint: render it with the llmtest version that wrote it ({writer})"
    )]
    Version {
        path: String,
        found: u64,
        writer: String,
    },
}

impl RunResults {
    /// Reads a results file of schema version [`RESULTS_SCHEMA_VERSION`].
    pub fn read(path: &std::path::Path) -> Result<RunResults, ReadError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
            path: p.clone(),
            source,
        })?;
        Self::parse(&p, &text)
    }

    /// Parses results text; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<RunResults, ReadError> {
        let json = |source: serde_json::Error| ReadError::Json {
            path: path.to_owned(),
            line: source.line(),
            column: source.column(),
            source,
        };
        // The version first, so a future file is refused for what it is, not for a field.
        let v: Value = serde_json::from_str(text).map_err(json)?;
        let found = v.get("schema_version").and_then(Value::as_u64).unwrap_or(0);
        if found != u64::from(RESULTS_SCHEMA_VERSION) {
            return Err(ReadError::Version {
                path: path.to_owned(),
                found,
                writer: v
                    .get("llmtest_version")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
            });
        }
        serde_json::from_str(text).map_err(json)
    }
}

/// Writes `contents` to `path` atomically: a temporary file beside it, flushed, then renamed
/// over it, so a reader (or a killed run) never sees half a file.
pub fn write_atomic(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |f| f.write_all(contents))
}

/// As [`write_atomic`], the contents written by `write` (through a buffer) as they come.
pub fn write_atomic_with(
    path: &std::path::Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::io::Write as _;
    match std::fs::metadata(path) {
        // `-o /dev/null`, a FIFO, `/dev/stdout`: written into, never renamed over (a rename
        // would put a regular file where the device was).
        Ok(m) if !m.is_file() && !m.is_dir() => {
            let f = std::fs::OpenOptions::new().write(true).open(path)?;
            let mut w = std::io::BufWriter::new(f);
            write(&mut w)?;
            return w.flush();
        }
        // A link to a file: the file is replaced, the link stays.
        Ok(_) if path.is_symlink() => {
            return write_atomic_with(&std::fs::canonicalize(path)?, write);
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::write_atomic;
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};

    #[test]
    fn a_fifo_or_device_is_written_into_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A reader that never blocks: the writer's open succeeds, and a replaced FIFO would
        // leave it with nothing to read instead of hanging the test.
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        write_atomic(&fifo, b"{\"results\": []}").unwrap();
        let mut got = String::new();
        let _ = reader.read_to_string(&mut got);
        assert_eq!(got, "{\"results\": []}");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "still a FIFO, not a regular file");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left beside it");
    }

    #[test]
    fn a_link_keeps_pointing_at_the_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(link.is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        write_atomic(&real, b"newer").unwrap();
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "newer");
    }
}
