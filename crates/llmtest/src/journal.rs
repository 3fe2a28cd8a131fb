//! The run journal: every finished item is appended to `<results>/journal.jsonl` as it
//! completes, one JSON line written in one call, so a run killed at item 900 of 1,319 keeps
//! 900 answers. `llmtest run --resume` reads it back and asks only for the rest.
//!
//! A line is `{"key": …, "name": "suite::case::model", "result": {CaseResult}}`. The key
//! hashes everything that decides the answer and its grade: the llmtest version, the mode,
//! the suite's mode and reasoning policy, the case (id, rendered prompt, variables,
//! assertions, weight, threshold, samples, parameters) and the model's configuration. Edit a
//! prompt, an assertion or a model's parameters and that item runs again. Results that are
//! infrastructure errors or skips are journaled but never reused: they are not answers.
//! A truncated last line (the kill came mid-write) is ignored and cut off before appending.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use llmtest_grade::Outcome;
use llmtest_spec::Project;

use crate::engine::Work;
use crate::results::CaseResult;

/// The journal's file name under the results directory (`journal-K-of-N.jsonl` for a shard).
pub(crate) fn file_name(shard: Option<crate::shard::Shard>) -> String {
    match shard {
        Some(s) => format!("journal-{}-of-{}.jsonl", s.k, s.n),
        None => "journal.jsonl".into(),
    }
}

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    name: String,
    result: CaseResult,
}

/// What decides an item's answer and grade, hashed.
pub(crate) fn item_key(project: &Project, mode: &str, w: &Work) -> String {
    let c = w.case();
    let mut s = String::new();
    let _ = write!(
        s,
        "llmtest {}\nmode {mode}\nsuite {} {:?} {:?} {:?}\ncase {}\nprompt {:?}\nvars {}\nweight {} threshold {:?} samples {}\nparams {:?}\n",
        env!("CARGO_PKG_VERSION"),
        w.suite.name,
        w.suite.mode,
        w.suite.reasoning,
        w.suite.pass_at_k,
        c.id,
        c.prompt,
        serde_json::Value::Object(c.vars.clone()),
        c.weight,
        c.threshold,
        c.samples,
        c.params,
    );
    // Locations are left out: adding a case above this one must not invalidate it.
    for a in &c.expect {
        let _ = writeln!(
            s,
            "expect {} {} {} {}",
            a.kind,
            a.negate,
            a.weight,
            serde_json::Value::Object(a.params.clone())
        );
    }
    let _ = write!(s, "model {}", model_text(project, &w.model));
    blake3::hash(s.as_bytes()).to_hex()[..32].to_owned()
}

/// A model's configuration as hashed into keys: what it is called, its backend, parameters
/// and options (not its description or location).
pub(crate) fn model_text(project: &Project, model: &str) -> String {
    match project.models.get(model) {
        Some(m) => format!(
            "{} {} {:?} {}",
            m.name,
            m.backend,
            m.params,
            serde_json::Value::Object(m.options.clone())
        ),
        None => model.to_owned(),
    }
}

/// Results read back from a journal, by key.
pub(crate) struct Resumed {
    pub results: HashMap<String, CaseResult>,
    /// Lines that could not be read (a truncated last line is not counted).
    pub bad_lines: usize,
    pub truncated_tail: bool,
}

/// Reads a journal; a missing file is an empty one.
pub(crate) fn read(path: &Path) -> std::io::Result<Resumed> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&text);
    let mut out = Resumed {
        results: HashMap::new(),
        bad_lines: 0,
        truncated_tail: false,
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(line) {
            Ok(l) => {
                let reusable = !l.result.outcome.is_infra() && l.result.outcome != Outcome::Skipped;
                if reusable {
                    out.results.insert(l.key, l.result);
                } else {
                    out.results.remove(&l.key);
                }
            }
            Err(_) if i + 1 == lines.len() && !complete => out.truncated_tail = true,
            Err(_) => out.bad_lines += 1,
        }
    }
    Ok(out)
}

/// Appends finished items; shared by the engine's tasks.
pub(crate) struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// A fresh journal (an earlier one is replaced).
    pub fn create(path: &Path) -> std::io::Result<Journal> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let file = File::create(path)?;
        Ok(Journal {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Continues a journal, first cutting off a truncated last line.
    pub fn append(path: &Path) -> std::io::Result<Journal> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let text = std::fs::read(path)?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64)?;
        }
        Ok(Journal {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Appends one finished item. One `write` call per line: a kill leaves whole lines and
    /// at most one partial last line.
    pub fn record(&self, key: &str, name: &str, result: &CaseResult) {
        let line = Line {
            key: key.to_owned(),
            name: name.to_owned(),
            result: result.clone(),
        };
        let mut text = llmtest_backend::redact_secrets(
            serde_json::to_string(&line).expect("journal line serializes"),
        );
        text.push('\n');
        let mut f = self.file.lock().expect("journal");
        if let Err(e) = f.write_all(text.as_bytes()).and_then(|_| f.flush()) {
            eprintln!("warning: cannot append to {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(case: &str, outcome: &str) -> CaseResult {
        serde_json::from_value(serde_json::json!({
            "suite": "s", "case": case, "model": "m", "outcome": outcome, "score": 0.0,
            "weight": 1.0, "samples": []
        }))
        .unwrap()
    }

    #[test]
    fn a_truncated_last_line_is_ignored_and_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        let j = Journal::create(&p).unwrap();
        j.record("k1", "s::a::m", &result("a", "pass"));
        j.record("k2", "s::b::m", &result("b", "fail"));
        j.record("k3", "s::c::m", &result("c", "infra_error"));
        drop(j);
        let full = std::fs::read(&p).unwrap();
        std::fs::write(&p, &full[..full.len() - 20]).unwrap();
        let r = read(&p).unwrap();
        assert!(r.truncated_tail);
        assert_eq!(r.bad_lines, 0);
        let mut keys: Vec<&String> = r.results.keys().collect();
        keys.sort();
        assert_eq!(keys, ["k1", "k2"]);

        let j = Journal::append(&p).unwrap();
        j.record("k3", "s::c::m", &result("c", "pass"));
        drop(j);
        let r = read(&p).unwrap();
        assert!(!r.truncated_tail);
        assert_eq!(r.results.len(), 3, "the re-run item replaced the cut line");
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 3);
    }

    #[test]
    fn infrastructure_errors_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        let j = Journal::create(&p).unwrap();
        j.record("k1", "s::a::m", &result("a", "pass"));
        j.record("k1", "s::a::m", &result("a", "infra_error"));
        drop(j);
        assert!(read(&p).unwrap().results.is_empty());
        assert!(
            read(&dir.path().join("none.jsonl"))
                .unwrap()
                .results
                .is_empty()
        );
    }
}
